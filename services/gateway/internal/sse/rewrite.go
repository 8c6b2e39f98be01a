package sse

import "bytes"

// ReplaceData appends to dst the event raw (as Framer.Next returned it)
// with its data replaced by data: the first data line's place gets one
// "data: " line per line of data, the other data lines are dropped, and
// every other line (event:, id:, comments, the blank terminator) is kept
// as it was. An event without data lines gets its data before the
// terminator.
func ReplaceData(dst, raw, data []byte) []byte {
	wrote := false
	emit := func() {
		for {
			i := bytes.IndexByte(data, '\n')
			line := data
			if i >= 0 {
				line = data[:i]
			}
			dst = append(dst, "data: "...)
			dst = append(dst, line...)
			dst = append(dst, '\n')
			if i < 0 {
				break
			}
			data = data[i+1:]
		}
		wrote = true
	}
	for len(raw) > 0 {
		i := bytes.IndexByte(raw, '\n')
		line := raw
		if i >= 0 {
			line = raw[:i+1]
		}
		raw = raw[len(line):]
		content := bytes.TrimRight(line, "\r\n")
		switch {
		case len(content) == 0:
			if !wrote {
				emit()
			}
			dst = append(dst, line...)
		case bytes.HasPrefix(content, []byte("data:")):
			if !wrote {
				emit()
			}
		default:
			dst = append(dst, line...)
			if i < 0 {
				dst = append(dst, '\n')
			}
		}
	}
	if !wrote {
		emit()
	}
	return dst
}
