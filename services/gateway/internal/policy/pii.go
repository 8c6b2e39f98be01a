package policy

import (
	"bytes"
	"encoding/binary"
)

// PII detectors are hand-written scanners. The numeric kinds (phone,
// credit card, SSN, IPv4, IBAN check digits) all start from one shared pass
// that records the maximal runs of ASCII digits; each detector then looks
// at neighbouring runs and the bytes between them, so a prompt without
// digits costs one byte loop. Emails start from '@' (bytes.IndexByte).

type run struct{ start, end int }

func (r run) len() int { return r.end - r.start }

func (st *evalState) ensureRuns() {
	if st.runsDone {
		return
	}
	st.runsDone = true
	t := st.text
	for i := 0; i < len(t); i++ {
		// skip 8 digit-free bytes at a time
		for i+8 <= len(t) && !hasDigit8(binary.LittleEndian.Uint64(t[i:])) {
			i += 8
		}
		if i >= len(t) {
			break
		}
		if t[i]-'0' > 9 {
			continue
		}
		j := i + 1
		for j < len(t) && t[j]-'0' <= 9 {
			j++
		}
		st.runs = append(st.runs, run{i, j})
		i = j
	}
}

func (st *evalState) collectPII(mask uint32) {
	for k := kEmail; k <= kIPv4; k++ {
		if mask&(1<<k) == 0 {
			continue
		}
		if st.piiDone&(1<<k) == 0 {
			st.piiDone |= 1 << k
			if k != kEmail {
				st.ensureRuns()
			}
			st.pii[k] = detectPII(k, st.text, st.runs, st.pii[k][:0])
		}
		st.hits = append(st.hits, st.pii[k]...)
	}
}

// hasDigit8 reports whether any of the 8 bytes in x is an ASCII digit
// (SWAR "has byte between 0x2f and 0x3a"; bytes >= 0x80 never match).
func hasDigit8(x uint64) bool {
	const ones, high = 0x0101010101010101, 0x8080808080808080
	const m, n = '0' - 1, '9' + 1
	return (ones*(127+n)-(x&(ones*127)))&^x&((x&(ones*127))+ones*(127-m))&high != 0
}

func detectPII(k kind, t []byte, runs []run, dst []hit) []hit {
	switch k {
	case kEmail:
		return findEmails(t, dst)
	case kPhone:
		return findPhones(t, runs, dst)
	case kCreditCard:
		return findCards(t, runs, dst)
	case kUSSSN:
		return findSSNs(t, runs, dst)
	case kIBAN:
		return findIBANs(t, runs, dst)
	case kIPv4:
		return findIPv4(t, runs, dst)
	}
	return dst
}

func isDigit(c byte) bool { return c-'0' <= 9 }
func isUpper(c byte) bool { return c-'A' <= 'Z'-'A' }
func isLower(c byte) bool { return c-'a' <= 'z'-'a' }
func isAlpha(c byte) bool { return isUpper(c) || isLower(c) }
func isAlnum(c byte) bool { return isDigit(c) || isAlpha(c) }

// isWordByte: ASCII alphanumerics, '_' and any non-ASCII byte (letters of
// other scripts glue to numbers as much as ASCII letters do).
func isWordByte(c byte) bool { return isAlnum(c) || c == '_' || c >= 0x80 }

func isSpace(c byte) bool { return c == ' ' || c == '\n' || c == '\t' || c == '\r' }

// joiners glue digit groups into one larger number: "1.5", "1,000",
// "2024-01-15", "12/25", "10:30".
func isJoiner(c byte) bool { return c == '.' || c == ',' || c == '-' || c == '/' || c == ':' }

// numLeft reports whether a number may start at s: not glued to a word or
// to a preceding digit group.
func numLeft(t []byte, s int) bool {
	if s == 0 {
		return true
	}
	c := t[s-1]
	if isWordByte(c) {
		return false
	}
	return !(isJoiner(c) && s >= 2 && isDigit(t[s-2]))
}

// numRight reports whether a number may end at e.
func numRight(t []byte, e int) bool {
	if e >= len(t) {
		return true
	}
	c := t[e]
	if isWordByte(c) {
		return false
	}
	return !(isJoiner(c) && e+1 < len(t) && isDigit(t[e+1]))
}

// ---- email ----

func isLocalChar(c byte) bool {
	return isAlnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-'
}

// fileTLD lists "TLDs" that are really file extensions (icon@2x.png).
var fileTLD = []string{"png", "jpg", "jpeg", "gif", "svg", "webp", "ico", "bmp", "tif", "tiff", "avif", "heic"}

// findEmails finds local@domain.tld. Decisions: the domain needs a dot and
// an alphabetic TLD of 2+ letters (no user@localhost, no pkg@1.2.3); a
// candidate inside a URL (its whitespace-delimited token has "://" before
// it, e.g. https://x.com/a@b.com or https://user@host.com) is not an email;
// scp-style git remotes (git@github.com:org/repo) and retina file names
// (icon@2x.png) are not emails; mailto:x@y.com is.
func findEmails(t []byte, dst []hit) []hit {
	off := 0
	for off < len(t) {
		k := bytes.IndexByte(t[off:], '@')
		if k < 0 {
			break
		}
		at := off + k
		off = at + 1
		l := at
		for l > 0 && at-l <= 64 && isLocalChar(t[l-1]) {
			l--
		}
		if at-l > 64 || (l > 0 && isLocalChar(t[l-1])) {
			continue
		}
		for l < at && t[l] == '.' {
			l++
		}
		if l == at || t[at-1] == '.' {
			continue
		}
		end, ok := scanDomain(t, at+1)
		if !ok {
			continue
		}
		if end < len(t) && (isWordByte(t[end]) || t[end] == '@') {
			continue
		}
		if end+1 < len(t) && t[end] == ':' && !isSpace(t[end+1]) {
			continue // git@github.com:org/repo.git
		}
		if inURL(t, l) {
			continue
		}
		dst = append(dst, hit{l, end, kEmail})
		off = end
	}
	return dst
}

// scanDomain reads labels [A-Za-z0-9-]+ separated by dots from d and
// returns the end of the domain.
func scanDomain(t []byte, d int) (int, bool) {
	i := d
	labels := 0
	lastStart := d
	end := d
	for {
		s := i
		for i < len(t) && (isAlnum(t[i]) || t[i] == '-') && i-s < 63 {
			i++
		}
		if i == s || t[s] == '-' || t[i-1] == '-' {
			break
		}
		labels++
		lastStart, end = s, i
		if i+1 < len(t) && t[i] == '.' && isAlnum(t[i+1]) {
			i++
			continue
		}
		break
	}
	if labels < 2 {
		return 0, false
	}
	tld := t[lastStart:end]
	if len(tld) < 2 || len(tld) > 24 {
		return 0, false
	}
	for _, c := range tld {
		if !isAlpha(c) {
			return 0, false
		}
	}
	for _, f := range fileTLD {
		if len(f) == len(tld) && bytes.EqualFold(tld, []byte(f)) {
			return 0, false
		}
	}
	return end, true
}

// inURL reports whether the whitespace-delimited token containing t[l]
// has "://" before l.
func inURL(t []byte, l int) bool {
	for j := l; j > 0 && l-j < 2048; j-- {
		c := t[j-1]
		if isSpace(c) || c == '"' || c == '\'' || c == '<' || c == '(' {
			return false
		}
		if c == '/' && j >= 3 && t[j-2] == '/' && t[j-3] == ':' {
			return true
		}
	}
	return false
}

// ---- credit cards ----

// findCards finds 13-19 digit numbers, contiguous or in groups of 3+
// digits separated by one consistent space or hyphen, that pass the Luhn
// check and carry a known issuer prefix with a length valid for it.
func findCards(t []byte, runs []run, dst []hit) []hit {
	for i := 0; i < len(runs); i++ {
		r := runs[i]
		if r.len() > 19 || !numLeft(t, r.start) {
			continue
		}
		// Chain runs: ends[x] is the last run index of the x-th candidate.
		var ends [8]int
		var totals [8]int
		nc := 0
		total := r.len()
		k := i
		var sep byte
		for {
			ends[nc], totals[nc] = k, total
			nc++
			if nc == len(ends) || k+1 >= len(runs) {
				break
			}
			nx := runs[k+1]
			if nx.start != runs[k].end+1 {
				break
			}
			c := t[runs[k].end]
			if (c != ' ' && c != '-') || (sep != 0 && c != sep) || runs[k].len() < 3 || nx.len() < 3 || total+nx.len() > 19 {
				break
			}
			sep = c
			total += nx.len()
			k++
		}
		for x := nc - 1; x >= 0; x-- {
			tot, last := totals[x], ends[x]
			if tot < 13 || !numRight(t, runs[last].end) {
				continue
			}
			var d [19]byte
			n := 0
			for _, rr := range runs[i : last+1] {
				n += copy(d[n:], t[rr.start:rr.end])
			}
			if luhn(d[:n]) && issuerOK(d[:n]) {
				dst = append(dst, hit{r.start, runs[last].end, kCreditCard})
				i = last
				break
			}
		}
	}
	return dst
}

func luhn(d []byte) bool {
	sum := 0
	double := false
	for i := len(d) - 1; i >= 0; i-- {
		v := int(d[i] - '0')
		if double {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
		double = !double
	}
	return sum%10 == 0
}

func prefixNum(d []byte, n int) int {
	v := 0
	for _, c := range d[:n] {
		v = v*10 + int(c-'0')
	}
	return v
}

// issuerOK checks the IIN range and length of the major networks.
func issuerOK(d []byte) bool {
	n := len(d)
	p1, p2, p3, p4 := prefixNum(d, 1), prefixNum(d, 2), prefixNum(d, 3), prefixNum(d, 4)
	p6 := prefixNum(d, 6)
	switch {
	case p1 == 4: // Visa
		return n == 13 || n == 16 || n == 19
	case p2 >= 51 && p2 <= 55, p4 >= 2221 && p4 <= 2720: // Mastercard
		return n == 16
	case p4 >= 2200 && p4 <= 2204: // Mir
		return n >= 16 && n <= 19
	case p2 == 34 || p2 == 37: // Amex
		return n == 15
	case p4 == 6011, p3 >= 644 && p3 <= 649, p2 == 65, p6 >= 622126 && p6 <= 622925: // Discover
		return n >= 16 && n <= 19
	case p2 == 62: // UnionPay
		return n >= 16 && n <= 19
	case p4 >= 3528 && p4 <= 3589: // JCB
		return n >= 16 && n <= 19
	case p3 >= 300 && p3 <= 305, p2 == 36, p2 == 38, p2 == 39, p4 == 3095: // Diners
		return n >= 14 && n <= 19
	case p4 == 5018, p4 == 5020, p4 == 5038, p4 == 5893, p4 == 6304, p4 == 6759, p4 >= 6761 && p4 <= 6763: // Maestro
		return n >= 13 && n <= 19
	}
	return false
}

// ---- US SSN ----

// findSSNs finds AAA-GG-SSSS with valid area (not 000, 666, 9xx), group
// (not 00) and serial (not 0000). Space-separated or bare 9-digit forms
// count only when "ssn" or "social security" appears just before.
func findSSNs(t []byte, runs []run, dst []hit) []hit {
	for i := 0; i < len(runs); i++ {
		a := runs[i]
		if a.len() == 9 && numLeft(t, a.start) && numRight(t, a.end) && ssnContext(t, a.start) &&
			ssnValid(t[a.start:a.start+3], t[a.start+3:a.start+5], t[a.start+5:a.end]) {
			dst = append(dst, hit{a.start, a.end, kUSSSN})
			continue
		}
		if a.len() != 3 || i+2 >= len(runs) {
			continue
		}
		b, c := runs[i+1], runs[i+2]
		if b.len() != 2 || c.len() != 4 || b.start != a.end+1 || c.start != b.end+1 {
			continue
		}
		sep := t[a.end]
		if t[b.end] != sep || (sep != '-' && !(sep == ' ' && ssnContext(t, a.start))) {
			continue
		}
		if !numLeft(t, a.start) || !numRight(t, c.end) || !ssnValid(t[a.start:a.end], t[b.start:b.end], t[c.start:c.end]) {
			continue
		}
		dst = append(dst, hit{a.start, c.end, kUSSSN})
		i += 2
	}
	return dst
}

func ssnValid(area, group, serial []byte) bool {
	ar := prefixNum(area, 3)
	return ar != 0 && ar != 666 && ar < 900 && prefixNum(group, 2) != 0 && prefixNum(serial, 4) != 0
}

func ssnContext(t []byte, s int) bool {
	w := t[max(0, s-40):s]
	return containsFold(w, "ssn") || containsFold(w, "social security")
}

// containsFold reports whether lower-case ASCII needle occurs in h,
// ignoring ASCII case.
func containsFold(h []byte, needle string) bool {
	for i := 0; i+len(needle) <= len(h); i++ {
		j := 0
		for j < len(needle) && lowerASCII(h[i+j]) == needle[j] {
			j++
		}
		if j == len(needle) {
			return true
		}
	}
	return false
}

// ---- phone numbers ----

// findPhones finds international numbers written with a leading '+'
// (8-15 digits in groups separated by spaces, dots, hyphens or parentheses)
// and North-American numbers (NXX) NXX-XXXX / NXX-NXX-XXXX / NXX.NXX.XXXX,
// optionally with a leading "1-". Space-separated NANP numbers count only
// with a "phone"/"tel"/"call"/"mobile"/"cell"/"fax" context just before.
// Bare digit runs are never phones (ids, timestamps, order numbers).
func findPhones(t []byte, runs []run, dst []hit) []hit {
	for i := 0; i < len(runs); i++ {
		r := runs[i]
		if r.start > 0 && t[r.start-1] == '+' && (r.start == 1 || !isWordByte(t[r.start-2])) {
			total, k := r.len(), i
			for k+1 < len(runs) && phoneGap(t[runs[k].end:runs[k+1].start]) && total+runs[k+1].len() <= 15 {
				total += runs[k+1].len()
				k++
			}
			if total >= 8 && total <= 15 && numRight(t, runs[k].end) {
				dst = append(dst, hit{r.start - 1, runs[k].end, kPhone})
				i = k
			}
			continue
		}
		if i+2 >= len(runs) {
			continue
		}
		a, b, c := r, runs[i+1], runs[i+2]
		if a.len() != 3 || b.len() != 3 || c.len() != 4 || t[a.start] < '2' || t[b.start] < '2' {
			continue
		}
		g1, g2 := t[a.end:b.start], t[b.end:c.start]
		if len(g2) != 1 || (g2[0] != '-' && g2[0] != '.' && g2[0] != ' ') {
			continue
		}
		start := a.start
		if a.start > 0 && t[a.start-1] == '(' {
			if !(string(g1) == ")" || string(g1) == ") " || string(g1) == ")-") {
				continue
			}
			start--
		} else {
			if len(g1) != 1 || g1[0] != g2[0] {
				continue
			}
			if g1[0] == ' ' && !phoneContext(t, a.start) {
				continue
			}
		}
		// optional "1-" / "1 " / "1." country prefix
		if start >= 2 && (t[start-1] == '-' || t[start-1] == ' ' || t[start-1] == '.') && t[start-2] == '1' &&
			(start == 2 || !isWordByte(t[start-3]) && !isJoiner(t[start-3])) {
			start -= 2
		}
		if !numLeft(t, start) || !numRight(t, c.end) {
			continue
		}
		dst = append(dst, hit{start, c.end, kPhone})
		i += 2
	}
	return dst
}

func phoneGap(g []byte) bool {
	if len(g) == 0 || len(g) > 3 {
		return false
	}
	for _, c := range g {
		if c != ' ' && c != '-' && c != '.' && c != '(' && c != ')' {
			return false
		}
	}
	return true
}

func phoneContext(t []byte, s int) bool {
	w := t[max(0, s-32):s]
	for _, k := range []string{"phone", "tel", "call", "mobile", "cell", "fax"} {
		if containsFold(w, k) {
			return true
		}
	}
	return false
}

// ---- IPv4 ----

// findIPv4 finds dotted quads (octets 0-255, no leading zeros) that are not
// part of a longer dotted number (versions like 1.2.3.4.5) nor preceded by
// "version". Loopback (127/8), 0.0.0.0 and 255.255.255.255 identify nobody
// and are skipped; private ranges are kept (internal topology is sensitive).
func findIPv4(t []byte, runs []run, dst []hit) []hit {
	for i := 0; i+3 < len(runs); i++ {
		rs := runs[i : i+4]
		ok := true
		for j, r := range rs {
			if r.len() > 3 || (r.len() > 1 && t[r.start] == '0') || prefixNum(t[r.start:r.end], r.len()) > 255 {
				ok = false
				break
			}
			if j > 0 && (r.start != rs[j-1].end+1 || t[rs[j-1].end] != '.') {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		s, e := rs[0].start, rs[3].end
		if s > 0 && (isWordByte(t[s-1]) || t[s-1] == '.') {
			continue
		}
		if e < len(t) && (isWordByte(t[e]) || (t[e] == '.' && e+1 < len(t) && isDigit(t[e+1]))) {
			continue
		}
		ip := t[s:e]
		if t[s] == '1' && rs[0].len() == 3 && t[s+1] == '2' && t[s+2] == '7' ||
			string(ip) == "0.0.0.0" || string(ip) == "255.255.255.255" {
			continue
		}
		if containsFold(t[max(0, s-9):s], "version") {
			continue
		}
		dst = append(dst, hit{s, e, kIPv4})
		i += 3
	}
	return dst
}

// ---- IBAN ----

// ibanLengths maps country codes to IBAN lengths (SWIFT registry).
var ibanLengths = func() map[[2]byte]uint8 {
	const list = "AD24 AE23 AL28 AT20 AZ28 BA20 BE16 BG22 BH22 BI27 BR29 BY28 CH21 CR22 CY28 CZ24 DE22 DJ27 DK18 DO28 " +
		"EE20 EG29 ES24 FI18 FK18 FO18 FR27 GB22 GE22 GI23 GL18 GR27 GT28 HN28 HR21 HU28 IE22 IL23 IQ23 IS26 IT27 " +
		"JO30 KW30 KZ20 LB28 LC32 LI21 LT20 LU20 LV21 LY25 MC27 MD24 ME22 MK19 MN20 MR27 MT31 MU30 NI28 NL18 NO15 " +
		"OM23 PK24 PL28 PS29 PT25 QA29 RO24 RS22 RU33 SA24 SC31 SD18 SE24 SI19 SK24 SM27 SO23 ST25 SV28 TL23 TN24 " +
		"TR26 UA29 VA22 VG24 XK20 YE30"
	m := map[[2]byte]uint8{}
	for i := 0; i+4 <= len(list); i += 5 {
		m[[2]byte{list[i], list[i+1]}] = (list[i+2]-'0')*10 + list[i+3] - '0'
	}
	return m
}()

// findIBANs finds upper-case IBANs, compact or printed in groups of four,
// with the length registered for the country and a valid mod-97 checksum.
func findIBANs(t []byte, runs []run, dst []hit) []hit {
	last := 0
	for _, r := range runs {
		s := r.start - 2
		if s < last || s < 0 || r.len() < 2 || !isUpper(t[s]) || !isUpper(t[s+1]) || (s > 0 && isWordByte(t[s-1])) {
			continue
		}
		L, ok := ibanLengths[[2]byte{t[s], t[s+1]}]
		if !ok {
			continue
		}
		var buf [34]byte
		cnt, j := 0, s
		for j < len(t) && cnt < int(L) {
			c := t[j]
			if isUpper(c) || isDigit(c) {
				buf[cnt] = c
				cnt++
				j++
				continue
			}
			if c == ' ' && cnt%4 == 0 && j+1 < len(t) && (isUpper(t[j+1]) || isDigit(t[j+1])) {
				j++
				continue
			}
			break
		}
		if cnt != int(L) || (j < len(t) && isWordByte(t[j])) || !ibanChecksum(buf[:cnt]) {
			continue
		}
		dst = append(dst, hit{s, j, kIBAN})
		last = j
	}
	return dst
}

func ibanChecksum(b []byte) bool {
	rem := 0
	add := func(c byte) {
		if isDigit(c) {
			rem = (rem*10 + int(c-'0')) % 97
		} else {
			rem = (rem*100 + int(c-'A'+10)) % 97
		}
	}
	for _, c := range b[4:] {
		add(c)
	}
	for _, c := range b[:4] {
		add(c)
	}
	return rem == 1
}
