package analytics

import (
	"encoding/binary"
	"math"
	"time"

	"trueportai/services/gateway/internal/usage"
)

// logCopy encodes a batch of usage_logs rows (stagingCols, in that order)
// in Postgres's binary COPY format, for a COPY straight into usage_logs.
// pgx's CopyFrom would take the rows as []any and plan every value's
// encoding through its type map, row after row: a quarter of the
// ingester's CPU (docs/benchmarks.md, "Rollups folded in Go"). The
// table's types are fixed, so each column is written as its binary form
// directly: uuid (16 bytes), text (its bytes; the server checks the
// encoding), timestamptz (microseconds since 2000-01-01 UTC, truncated as
// pgx does), int4, int8, float8, bool, text[] (one dimension), NULL (-1).
type logCopy struct{ b []byte }

// copySignature is the binary COPY header: signature, flags, extension length.
var copySignature = []byte("PGCOPY\n\xff\r\n\x00\x00\x00\x00\x00\x00\x00\x00\x00")

// pgEpochMicros is 2000-01-01 00:00:00 UTC in Unix microseconds.
const pgEpochMicros = 946684800 * 1000000

// textOID is Postgres's text type (the element type of text[]).
const textOID = 25

func newLogCopy(rows int) *logCopy {
	c := &logCopy{b: make([]byte, 0, len(copySignature)+rows*512+2)}
	c.b = append(c.b, copySignature...)
	return c
}

// row appends one event's row; id is its row id, tenant and key its parsed
// ids (key nil: no key), vids its violation ids.
func (c *logCopy) row(e *usage.Event, id, tenant [16]byte, key *[16]byte, vids []string) {
	c.b = binary.BigEndian.AppendUint16(c.b, uint16(len(stagingCols)))
	c.uuid(id)
	c.text(e.RequestID)
	c.timestamptz(e.CreatedAt)
	c.uuid(tenant)
	c.text(e.Env)
	if key == nil {
		c.null()
	} else {
		c.uuid(*key)
	}
	c.text(e.KeyName)
	c.text(e.Provider)
	c.text(e.Model)
	c.text(e.Path)
	c.int4(int32(e.StatusCode))
	c.bool(e.Stream)
	c.float8(e.LatencyMS)
	c.float8Ptr(e.TTFBMS)
	c.int8Ptr(e.PromptTokens)
	c.int8Ptr(e.CompletionTokens)
	c.int8Ptr(e.TotalTokens)
	c.int8Ptr(e.CachedTokens)
	if e.CostUSD == nil {
		c.null()
	} else {
		c.int8(int64(*e.CostUSD))
	}
	c.text(e.Outcome)
	c.text(e.Error)
	c.textArray(vids)
	c.textPtr(e.RequestBody)
	c.textPtr(e.ResponseBody)
}

// bytes ends the stream (the trailer) and returns it.
func (c *logCopy) bytes() []byte {
	return binary.BigEndian.AppendUint16(c.b, 0xffff)
}

func (c *logCopy) size(n int) { c.b = binary.BigEndian.AppendUint32(c.b, uint32(n)) }

func (c *logCopy) null() { c.b = binary.BigEndian.AppendUint32(c.b, math.MaxUint32) } // length -1

func (c *logCopy) uuid(u [16]byte) {
	c.size(16)
	c.b = append(c.b, u[:]...)
}

func (c *logCopy) text(s string) {
	c.size(len(s))
	c.b = append(c.b, s...)
}

func (c *logCopy) textPtr(s *string) {
	if s == nil {
		c.null()
		return
	}
	c.text(*s)
}

func (c *logCopy) timestamptz(t time.Time) {
	c.size(8)
	c.b = binary.BigEndian.AppendUint64(c.b, uint64(t.Unix()*1000000+int64(t.Nanosecond())/1000-pgEpochMicros))
}

func (c *logCopy) int4(v int32) {
	c.size(4)
	c.b = binary.BigEndian.AppendUint32(c.b, uint32(v))
}

func (c *logCopy) int8(v int64) {
	c.size(8)
	c.b = binary.BigEndian.AppendUint64(c.b, uint64(v))
}

func (c *logCopy) int8Ptr(v *int64) {
	if v == nil {
		c.null()
		return
	}
	c.int8(*v)
}

func (c *logCopy) float8(v float64) {
	c.size(8)
	c.b = binary.BigEndian.AppendUint64(c.b, math.Float64bits(v))
}

func (c *logCopy) float8Ptr(v *float64) {
	if v == nil {
		c.null()
		return
	}
	c.float8(*v)
}

func (c *logCopy) bool(v bool) {
	c.size(1)
	if v {
		c.b = append(c.b, 1)
	} else {
		c.b = append(c.b, 0)
	}
}

// textArray writes a one-dimensional text[] (no NULL elements); an empty
// one has no dimension, as Postgres writes '{}'.
func (c *logCopy) textArray(vs []string) {
	n := 12
	if len(vs) > 0 {
		n += 8
		for _, v := range vs {
			n += 4 + len(v)
		}
	}
	c.size(n)
	dims := uint32(0)
	if len(vs) > 0 {
		dims = 1
	}
	c.b = binary.BigEndian.AppendUint32(c.b, dims)
	c.b = binary.BigEndian.AppendUint32(c.b, 0) // no NULL elements
	c.b = binary.BigEndian.AppendUint32(c.b, textOID)
	if len(vs) > 0 {
		c.b = binary.BigEndian.AppendUint32(c.b, uint32(len(vs)))
		c.b = binary.BigEndian.AppendUint32(c.b, 1) // lower bound
		for _, v := range vs {
			c.text(v)
		}
	}
}
