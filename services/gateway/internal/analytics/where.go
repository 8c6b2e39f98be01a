package analytics

import (
	"strconv"
	"strings"
	"time"
)

// where builds a WHERE clause with $n parameters from conditions written
// with one '?' for their value.
type where struct {
	conds []string
	args  []any
}

// scoped starts the clause every tenant-facing listing begins with: one
// tenant's environment and, when set, the created_at range [from, to).
func scoped(tenantID, env string, from, to time.Time) *where {
	w := &where{}
	w.add("tenant_id = ?::uuid", tenantID)
	w.add("env = ?", env)
	if !from.IsZero() {
		w.add("created_at >= ?", from)
	}
	if !to.IsZero() {
		w.add("created_at < ?", to)
	}
	return w
}

func (w *where) add(cond string, v any) {
	w.args = append(w.args, v)
	w.conds = append(w.conds, strings.ReplaceAll(cond, "?", "$"+strconv.Itoa(len(w.args))))
}

func (w *where) String() string { return strings.Join(w.conds, " AND ") }

// page appends limit and offset and returns "LIMIT $n OFFSET $m" and the
// arguments of the whole statement.
func (w *where) page(limit, offset int) (string, []any) {
	args := append(append([]any(nil), w.args...), limit, offset)
	return `LIMIT $` + strconv.Itoa(len(args)-1) + ` OFFSET $` + strconv.Itoa(len(args)), args
}
