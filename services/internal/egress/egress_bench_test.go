package egress

import "testing"

// BenchmarkDialCheck is what the tenant transport's dialer adds to each
// connection it opens (not to each request: connections are kept alive),
// and BenchmarkCheckScheme what the proxy adds to each request to a
// tenant-chosen base URL.
func BenchmarkDialCheck(b *testing.B) {
	p := &Policy{}
	for b.Loop() {
		if err := p.control("tcp4", "93.184.215.14:443", nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCheckScheme(b *testing.B) {
	p := &Policy{}
	for b.Loop() {
		if err := p.CheckScheme("https://models.tenant.example/v1/chat/completions"); err != nil {
			b.Fatal(err)
		}
	}
}
