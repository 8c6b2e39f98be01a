module trueportai/services/platform-backend

go 1.26.8
