package policy

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// snippet masks a match for the violation record. It never contains the
// matched secret or the full personal datum:
//
//	email        j***@e***.com         (first characters + TLD)
//	phone        +** *** *** **67      (last two digits)
//	credit_card  **** **** **** 4242   (last four digits, separators kept)
//	us_ssn       ***-**-6789           (last four digits)
//	iban         DE** **** … **30 00   (country code + last four)
//	ipv4         192.*.*.*             (first octet)
//	secrets      AKIA... (20 chars)    (first four characters + length;
//	             private keys: the BEGIN line + length)
//	keyword      c**********l          (first and last character)
//	regex        AB... (12 chars)      (first two characters + length)
//	injection    the matched phrase (it is the attack, not user data),
//	             whitespace collapsed, at most 80 bytes
func snippet(typ ruleType, k kind, m []byte) string {
	switch typ {
	case rtKeyword:
		return maskKeyword(m)
	case rtRegex:
		return prefixLen(m, 2)
	case rtInjection:
		return phrase(m)
	}
	switch k {
	case kEmail:
		return maskEmail(m)
	case kPhone:
		return maskDigits(m, 2)
	case kCreditCard, kUSSSN:
		return maskDigits(m, 4)
	case kIBAN:
		return maskIBAN(m)
	case kIPv4:
		if i := strings.IndexByte(string(m), '.'); i > 0 {
			return string(m[:i]) + ".*.*.*"
		}
		return "*.*.*.*"
	case kPrivateKey:
		line := m
		if i := strings.Index(string(m[5:]), "-----"); i >= 0 {
			line = m[:5+i+5]
		}
		return string(line) + " (" + strconv.Itoa(utf8.RuneCount(m)) + " chars)"
	}
	return prefixLen(m, 4)
}

func prefixLen(m []byte, n int) string {
	var b strings.Builder
	i := 0
	for r := 0; r < n && i < len(m); r++ {
		_, size := utf8.DecodeRune(m[i:])
		i += size
	}
	// never reveal more than a quarter of a short match
	if i*4 > len(m) {
		i = 0
	}
	b.Write(m[:i])
	b.WriteString("... (")
	b.WriteString(strconv.Itoa(utf8.RuneCount(m)))
	b.WriteString(" chars)")
	return b.String()
}

func maskEmail(m []byte) string {
	at := strings.LastIndexByte(string(m), '@')
	dot := strings.LastIndexByte(string(m), '.')
	if at <= 0 || dot <= at+1 {
		return "***"
	}
	return string(m[:1]) + "***@" + string(m[at+1:at+2]) + "***" + string(m[dot:])
}

// maskDigits replaces every digit but the last keep with '*'.
func maskDigits(m []byte, keep int) string {
	b := []byte(string(m))
	seen := 0
	for i := len(b) - 1; i >= 0; i-- {
		if isDigit(b[i]) {
			seen++
			if seen > keep {
				b[i] = '*'
			}
		}
	}
	return string(b)
}

func maskIBAN(m []byte) string {
	b := []byte(string(m))
	n := 0
	for _, c := range b {
		if isAlnum(c) {
			n++
		}
	}
	idx := 0
	for i, c := range b {
		if !isAlnum(c) {
			continue
		}
		if idx >= 2 && idx < n-4 {
			b[i] = '*'
		}
		idx++
	}
	return string(b)
}

func maskKeyword(m []byte) string {
	r := []rune(string(m))
	if len(r) <= 2 {
		return strings.Repeat("*", len(r))
	}
	for i := 1; i < len(r)-1; i++ {
		if r[i] != ' ' {
			r[i] = '*'
		}
	}
	return string(r)
}

func phrase(m []byte) string {
	s := strings.Join(strings.Fields(string(m)), " ")
	return truncate(s, 80)
}

// truncate cuts s to at most n bytes on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}
