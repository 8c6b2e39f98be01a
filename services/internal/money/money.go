// Package money holds exact US-dollar amounts. A USD is an integer count
// of 10⁻¹⁰ dollars, so sums are exact and every amount reads and writes as
// a decimal with at most 10 decimals (docs/decisions.md, "Money"). Both
// services use it: the gateway stores and adds costs with it, the platform
// shows the gateway's totals.
package money

import (
	"errors"
	"math"
	"math/big"
	"math/bits"
	"strconv"
	"strings"
)

// USD is an amount in units of 10⁻¹⁰ US dollars (Scale decimals).
type USD int64

// Scale is the number of decimals a USD keeps.
const Scale = 10

// Dollar is one US dollar.
const Dollar USD = 10_000_000_000

// ErrInvalid is returned for a text that is not a decimal amount.
var ErrInvalid = errors.New("money: not a decimal amount")

// ErrRange is returned for an amount beyond ±922 337 203 dollars.
var ErrRange = errors.New("money: amount out of range")

// FromFloat rounds a binary float of dollars to the nearest unit. The
// floats that older code computed (1.1700000000000001e-05) come back as the
// decimal they stood for (0.0000117).
func FromFloat(f float64) USD {
	return USD(math.Round(f * float64(Dollar)))
}

// Float64 is u in dollars as a binary float (for metrics and estimates
// only; never add these).
func (u USD) Float64() float64 { return float64(u) / float64(Dollar) }

// String writes u as a plain decimal: at most Scale decimals, no trailing
// zeros, no exponent ("0.0000117", "12", "-0.5").
func (u USD) String() string {
	var buf [32]byte
	return string(u.AppendText(buf[:0]))
}

// AppendText appends u as String writes it.
func (u USD) AppendText(b []byte) []byte {
	neg := u < 0
	v := uint64(u)
	if neg {
		b = append(b, '-')
		v = -v
	}
	b = strconv.AppendUint(b, v/uint64(Dollar), 10)
	frac := v % uint64(Dollar)
	if frac == 0 {
		return b
	}
	var digits [Scale]byte
	for i := Scale - 1; i >= 0; i-- {
		digits[i] = byte('0' + frac%10)
		frac /= 10
	}
	n := Scale
	for digits[n-1] == '0' {
		n--
	}
	b = append(b, '.')
	return append(b, digits[:n]...)
}

// MarshalJSON writes u as a JSON number with at most 10 decimals.
func (u USD) MarshalJSON() ([]byte, error) { return u.AppendText(nil), nil }

// MarshalText writes u as String does.
func (u USD) MarshalText() ([]byte, error) { return u.AppendText(nil), nil }

// UnmarshalJSON reads a JSON number or a string holding one (Parse).
func (u *USD) UnmarshalJSON(b []byte) error {
	s := string(b)
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
	}
	v, err := Parse(s)
	if err != nil {
		return err
	}
	*u = v
	return nil
}

// UnmarshalText reads what Parse reads.
func (u *USD) UnmarshalText(b []byte) error {
	v, err := Parse(string(b))
	if err != nil {
		return err
	}
	*u = v
	return nil
}

// Parse reads a decimal amount of dollars ("0.0000117", "-3", "1.17e-05").
// Digits beyond the 10th decimal are rounded half away from zero, so the
// binary floats of older events ("1.1700000000000001e-05") read as the
// decimal they stood for.
func Parse(s string) (USD, error) {
	if s == "" || len(s) > 400 {
		return 0, ErrInvalid
	}
	if !strings.ContainsAny(s, "eE") {
		if v, ok := parsePlain(s); ok {
			return v, nil
		}
	}
	r, ok := new(big.Rat).SetString(s)
	if !ok || strings.ContainsAny(s, "/xXpP_") {
		return 0, ErrInvalid
	}
	r.Mul(r, new(big.Rat).SetInt64(int64(Dollar)))
	q, m := new(big.Int).QuoRem(r.Num(), r.Denom(), new(big.Int))
	// Round half away from zero: |2·remainder| >= denominator.
	if m.Sign() != 0 && new(big.Int).Abs(new(big.Int).Lsh(m, 1)).Cmp(r.Denom()) >= 0 {
		q.Add(q, big.NewInt(int64(r.Num().Sign())))
	}
	if !q.IsInt64() {
		return 0, ErrRange
	}
	return USD(q.Int64()), nil
}

// parsePlain reads [-]digits[.digits] with at most Scale decimals without
// allocating; ok is false for anything else (Parse then takes the long way).
func parsePlain(s string) (USD, bool) {
	neg := false
	if s[0] == '-' || s[0] == '+' {
		neg, s = s[0] == '-', s[1:]
	}
	whole, frac, dot := strings.Cut(s, ".")
	if whole == "" && frac == "" || len(frac) > Scale || dot && frac == "" && whole == "" || len(whole) > 9 {
		return 0, false
	}
	var v uint64
	for _, c := range []byte(whole) {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
	}
	v *= uint64(Dollar)
	var f uint64
	for i := 0; i < Scale; i++ {
		f *= 10
		if i < len(frac) {
			c := frac[i]
			if c < '0' || c > '9' {
				return 0, false
			}
			f += uint64(c - '0')
		}
	}
	v += f
	if neg {
		return -USD(v), true
	}
	return USD(v), true
}

// Product adds up products of token counts and per-token-block prices in
// 128-bit arithmetic, so a cost made of several terms is rounded once.
type Product struct{ hi, lo uint64 }

// Add adds n·u (negative factors count as zero).
func (p *Product) Add(n int64, u USD) {
	if n <= 0 || u <= 0 {
		return
	}
	hi, lo := bits.Mul64(uint64(n), uint64(u))
	var c uint64
	p.lo, c = bits.Add64(p.lo, lo, 0)
	p.hi += hi + c
}

// Div returns the sum divided by d (> 0), rounded half up: the cost of
// the tokens added at prices per d tokens. It saturates at the largest USD
// rather than wrap.
func (p Product) Div(d int64) USD {
	if d <= 0 {
		return 0
	}
	lo, c := bits.Add64(p.lo, uint64(d)/2, 0)
	hi := p.hi + c
	if hi >= uint64(d) {
		return USD(math.MaxInt64)
	}
	q, _ := bits.Div64(hi, lo, uint64(d))
	if q > math.MaxInt64 {
		return USD(math.MaxInt64)
	}
	return USD(q)
}
