package fakeprovider

import (
	"encoding/base64"
	"encoding/binary"
	"hash/fnv"
	"math"
)

// maxDimensions bounds the embedding size a request may ask for.
const maxDimensions = 8192

// embedVector returns a deterministic unit-length vector of dims values
// derived from seed: the same input always embeds to the same vector.
func embedVector(seed string, dims int) []float32 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(seed))
	state := h.Sum64()
	raw := make([]float64, dims)
	norm := 0.0
	for i := range raw {
		f := float64(splitmix64(&state)>>11)/(1<<53)*2 - 1
		raw[i] = f
		norm += f * f
	}
	scale := 1 / math.Sqrt(max(norm, math.SmallestNonzeroFloat64))
	v := make([]float32, dims)
	for i, f := range raw {
		v[i] = float32(f * scale)
	}
	return v
}

// splitmix64 advances state and returns the next pseudo-random value.
func splitmix64(state *uint64) uint64 {
	*state += 0x9e3779b97f4a7c15
	z := *state
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// float32Base64 encodes v the way OpenAI does for encoding_format=base64:
// the little-endian IEEE 754 float32 bytes, standard base64.
func float32Base64(v []float32) string {
	b := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(f))
	}
	return base64.StdEncoding.EncodeToString(b)
}

// dimensionsOr returns requested when it is a valid size, def otherwise.
func dimensionsOr(requested, def int) int {
	if requested > 0 && requested <= maxDimensions {
		return requested
	}
	return def
}
