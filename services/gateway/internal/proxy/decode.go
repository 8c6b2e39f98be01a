package proxy

import (
	"bufio"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"
)

// Request bodies with a Content-Encoding are decoded before anything reads
// them (the model allowlist, policies, metering of the prompt) and are
// forwarded decoded (Content-Encoding is on no provider's header
// allowlist): what was checked is what is sent. The body limit applies to
// the decoded size, so a small compressed body that inflates past it (a
// zip bomb) is refused with 413 after reading at most limit+1 decoded
// bytes. One coding is accepted (gzip, deflate, br, zstd; identity is
// ignored); anything else, stacked codings included, is refused with 415.

// errUnsupportedEncoding is a Content-Encoding the gateway does not decode.
var errUnsupportedEncoding = errors.New("unsupported content encoding")

// errBadEncoding is a body that does not decode.
var errBadEncoding = errors.New("body does not decode")

// zstdMaxWindow bounds the window a zstd frame may ask for (the memory one
// decoder allocates); the format's own limit is far larger.
const zstdMaxWindow = 8 << 20

// bodyEncoding returns the request's one content coding ("" for none).
func bodyEncoding(h http.Header) (string, error) {
	vals := h.Values("Content-Encoding")
	coding := ""
	for _, v := range vals {
		for part := range strings.SplitSeq(v, ",") {
			part = strings.ToLower(strings.TrimSpace(part))
			if part == "" || part == "identity" {
				continue
			}
			if coding != "" {
				return "", errUnsupportedEncoding
			}
			coding = part
		}
	}
	switch coding {
	case "", "gzip", "x-gzip", "deflate", "br", "zstd":
		return coding, nil
	}
	return "", errUnsupportedEncoding
}

// decodeBody replaces the encoded body in buf with its decoding, reading at
// most limit+1 decoded bytes.
func decodeBody(coding string, buf *bytes.Buffer, limit int64) ([]byte, error) {
	src := bytes.NewReader(buf.Bytes())
	var r io.Reader
	switch coding {
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(src)
		if err != nil {
			return nil, errBadEncoding
		}
		zr.Multistream(true)
		r = zr
	case "deflate":
		// RFC 9110's deflate is zlib; some clients send raw deflate.
		br := bufio.NewReader(src)
		if hdr, err := br.Peek(2); err == nil && (uint16(hdr[0])<<8|uint16(hdr[1]))%31 == 0 && hdr[0]&0x0f == 8 {
			zr, err := zlib.NewReader(br)
			if err != nil {
				return nil, errBadEncoding
			}
			r = zr
		} else {
			r = flate.NewReader(br)
		}
	case "br":
		r = brotli.NewReader(src)
	case "zstd":
		zr, err := zstd.NewReader(src, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxWindow(zstdMaxWindow))
		if err != nil {
			return nil, errBadEncoding
		}
		defer zr.Close()
		r = zr
	default:
		return buf.Bytes(), nil
	}
	var out bytes.Buffer
	out.Grow(min(buf.Len()*4, int(limit)+1))
	n, err := out.ReadFrom(io.LimitReader(r, limit+1))
	if n > limit || errors.Is(err, zstd.ErrWindowSizeExceeded) {
		return nil, errTooLarge
	}
	if err != nil {
		return nil, errBadEncoding
	}
	buf.Reset()
	buf.Write(out.Bytes())
	return buf.Bytes(), nil
}

// encodingRefusal is the answer to a body that cannot be decoded.
func encodingRefusal(err error, limit int64) refusal {
	switch {
	case errors.Is(err, errUnsupportedEncoding):
		return refusal{http.StatusUnsupportedMediaType, "unsupported_content_encoding",
			"the request body's Content-Encoding is not supported: send it uncompressed or as gzip, deflate, br or zstd (one coding)"}
	case errors.Is(err, errTooLarge):
		return refusal{http.StatusRequestEntityTooLarge, "request_too_large", "request body exceeds " + strconv.FormatInt(limit, 10) + " bytes once decoded"}
	}
	return refusal{http.StatusBadRequest, "invalid_body", "the request body does not decode as its Content-Encoding says"}
}
