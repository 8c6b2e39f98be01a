package policy

import (
	"slices"
	"testing"
)

type detCase struct {
	text string
	want []string // matched substrings, in order; nil = no match
}

func runDetCases(t *testing.T, k kind, cases []detCase) {
	t.Helper()
	for _, c := range cases {
		got := detect(k, c.text)
		if !slices.Equal(got, c.want) {
			t.Errorf("%s in %q: got %q, want %q", kindName[k], c.text, got, c.want)
		}
	}
}

func TestEmail(t *testing.T) {
	runDetCases(t, kEmail, []detCase{
		{"mail jane.doe@example.com now", []string{"jane.doe@example.com"}},
		{"<j_o+tag@sub.mail.example.co.uk>.", []string{"j_o+tag@sub.mail.example.co.uk"}},
		{"mailto:ops@corp.io", []string{"ops@corp.io"}},
		{"a@b.co and c@d.org", []string{"a@b.co", "c@d.org"}},
		{"End of sentence: bob@example.com.", []string{"bob@example.com"}},
		// false positives avoided
		{"see https://x.com/a@b.com for details", nil},
		{"https://user@host.example.com/path", nil},
		{"git clone git@github.com:org/repo.git", nil},
		{"retina icon@2x.png and logo@3x.jpeg", nil},
		{"npm i left-pad@1.3.0 and @types/node", nil},
		{"user@localhost", nil},
		{"decorator @Override and a @ b.com", nil},
		{"x@y.c is too short a tld", nil},
		{"double..dot@example.com", []string{"double..dot@example.com"}}, // invalid per RFC, still personal
	})
}

func TestCreditCard(t *testing.T) {
	runDetCases(t, kCreditCard, []detCase{
		{"card 4242 4242 4242 4242 exp 12/27", []string{"4242 4242 4242 4242"}},
		{"4111111111111111", []string{"4111111111111111"}},
		{"amex 3782-822463-10005.", []string{"3782-822463-10005"}},
		{"mc 5555555555554444, visa 4012888888881881", []string{"5555555555554444", "4012888888881881"}},
		{"discover 6011 1111 1111 1117", []string{"6011 1111 1111 1117"}},
		{"card 4242 4242 4242 4242 2025", []string{"4242 4242 4242 4242"}},
		// other networks (public test numbers)
		{"jcb 3566002020360505 diners 36227206271667 unionpay 6200000000000005", []string{"3566002020360505", "36227206271667", "6200000000000005"}},
		{"mc2 2223003122003222 amex 378282246310005 diners16 3056930009020004", []string{"2223003122003222", "378282246310005", "3056930009020004"}},
		{"visa13 4222222222222", []string{"4222222222222"}},
		{"amex wrong length 3782822463100050", nil},
		// false positives avoided
		{"Luhn-invalid 4242 4242 4242 4241", nil},
		{"order 4111111111111112", nil},
		{"price $4,242.42 and 1,234,567,890,123", nil},
		{"timestamp 1700000000000 ms", nil},                                // no issuer prefix
		{"years 2024 2025 2026 2027", nil},                                 // issuer check
		{"dates 2024-01-15 and 15/01/2024", nil},                           // too short
		{"id 42424242424242424242", nil},                                   // 20 digits
		{"isbn 978-3-16-148410-0", nil},                                    // groups too short
		{"ref A4242424242424242", nil},                                     // glued to a letter
		{"version 4242424242424242.1", nil},                                // decimal
		{"0.4242424242424242 probability", nil},                            // decimal fraction
		{"4242 4242 4242 4242 4242 4242", []string{"4242 4242 4242 4242"}}, // longest valid prefix
	})
}

func TestSSN(t *testing.T) {
	runDetCases(t, kUSSSN, []detCase{
		{"ssn 123-45-6789.", []string{"123-45-6789"}},
		{"SSN: 123 45 6789", []string{"123 45 6789"}},
		{"social security number 078051121", []string{"078051121"}},
		// false positives avoided
		{"invalid 000-12-3456 666-12-3456 900-12-3456 123-00-4567 123-45-0000", nil},
		{"room 123 45 6789", nil}, // spaces need context
		{"id 123456789", nil},     // bare digits need context
		{"date 2024-01-15", nil},
		{"phone 555-123-4567", nil},
		{"serial 1-123-45-6789", nil},
	})
}

func TestPhone(t *testing.T) {
	runDetCases(t, kPhone, []detCase{
		{"call 415-555-0134 today", []string{"415-555-0134"}},
		{"(415) 555-0134", []string{"(415) 555-0134"}},
		{"tel: 415.555.0134", []string{"415.555.0134"}},
		{"1-800-555-0199", []string{"1-800-555-0199"}},
		{"+1 (415) 555-0134", []string{"+1 (415) 555-0134"}},
		{"UK +44 20 7946 0958.", []string{"+44 20 7946 0958"}},
		{"+4915123456789", []string{"+4915123456789"}},
		{"phone 415 555 0134", []string{"415 555 0134"}},
		// false positives avoided
		{"sizes 256 512 1024", nil},                       // spaces without context
		{"area 123-456-7890", nil},                        // area code cannot start with 1
		{"date 2024-01-15 12:30", nil},                    // not NANP shape
		{"order 4155550134", nil},                         // bare digits
		{"3+4 = 7 and +100%", nil},                        // too few digits
		{"price $415.555.0134", []string{"415.555.0134"}}, // shape wins; documented
		{"v415-555-0134", nil},
	})
}

func TestIPv4(t *testing.T) {
	runDetCases(t, kIPv4, []detCase{
		{"server 10.0.12.7 is down", []string{"10.0.12.7"}},
		{"from 203.0.113.195:8080", []string{"203.0.113.195"}},
		{"cidr 192.168.1.0/24", []string{"192.168.1.0"}},
		// false positives avoided
		{"localhost 127.0.0.1 and 0.0.0.0 and 255.255.255.255", nil},
		{"bad 256.1.1.1 and 1.2.3", nil},
		{"leading zero 010.1.1.1", nil},
		{"version 1.2.3.4", nil},
		{"v1.2.3.4 and 1.2.3.4.5", nil},
	})
}

func TestIBAN(t *testing.T) {
	runDetCases(t, kIBAN, []detCase{
		{"IBAN DE89370400440532013000.", []string{"DE89370400440532013000"}},
		{"pay to GB82 WEST 1234 5698 7654 32 please", []string{"GB82 WEST 1234 5698 7654 32"}},
		{"FR1420041010050500013M02606", []string{"FR1420041010050500013M02606"}},
		// false positives avoided
		{"DE89370400440532013001", nil},   // checksum
		{"DE8937040044053201300", nil},    // length for DE
		{"XX89370400440532013000", nil},   // unknown country
		{"de89370400440532013000", nil},   // lower case
		{"ABDE89370400440532013000", nil}, // glued
	})
}

func TestLuhnAndIBANHelpers(t *testing.T) {
	if !luhn([]byte("79927398713")) || luhn([]byte("79927398710")) {
		t.Fatal("luhn")
	}
	if !ibanChecksum([]byte("NL91ABNA0417164300")) || ibanChecksum([]byte("NL91ABNA0417164301")) {
		t.Fatal("iban")
	}
}

func TestHasDigit8(t *testing.T) {
	for c := 0; c < 256; c++ {
		for pos := 0; pos < 8; pos++ {
			var b [8]byte
			for i := range b {
				b[i] = 'a'
			}
			b[pos] = byte(c)
			x := uint64(0)
			for i := 7; i >= 0; i-- {
				x = x<<8 | uint64(b[i])
			}
			if hasDigit8(x) != isDigit(byte(c)) {
				t.Fatalf("byte %#x at %d", c, pos)
			}
		}
	}
}
