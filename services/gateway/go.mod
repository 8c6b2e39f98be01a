module trueportai/services/gateway

go 1.26.8
