package server

// The JSON body of a PUT, {"value": "...", "ttl": seconds}, decoded without
// reflection in its common shape, which is most of a PUT's handler time with
// encoding/json. fastPutBody recognises only what it can decode exactly as
// encoding/json would: the exact field names "value" and "ttl" (a duplicate
// keeps the last, as encoding/json does), strings without escapes or control
// characters, null, and numbers of the form 12 or 12.5. Anything else (an
// escape, another field, an exponent, malformed input) is not an error here:
// the caller decodes the body with encoding/json, which gives the answer and
// the error messages. FuzzPutBody checks that both agree.

import (
	"strconv"
)

// fastPutBody parses b (valid UTF-8). ok false: decode with encoding/json.
func fastPutBody(b []byte) (body putBody, ok bool) {
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		return body, false
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return body, skipWS(b, i+1) == len(b)
	}
	for {
		name, j, ok := plainString(b, i)
		if !ok {
			return body, false
		}
		i = skipWS(b, j)
		if i >= len(b) || b[i] != ':' {
			return body, false
		}
		i = skipWS(b, i+1)
		isNull := len(b)-i >= 4 && string(b[i:i+4]) == "null"
		switch string(name) {
		case "value":
			if isNull {
				body.Value, i = nil, i+4
				break
			}
			s, j, ok := plainString(b, i)
			if !ok {
				return body, false
			}
			v := string(s)
			body.Value, i = &v, j
		case "ttl":
			if isNull {
				body.TTL, i = nil, i+4
				break
			}
			j := plainNumber(b, i)
			if j == i {
				return body, false
			}
			f, err := strconv.ParseFloat(string(b[i:j]), 64)
			if err != nil {
				return body, false
			}
			body.TTL, i = &f, j
		default:
			return body, false
		}
		i = skipWS(b, i)
		if i >= len(b) {
			return body, false
		}
		switch b[i] {
		case ',':
			i = skipWS(b, i+1)
		case '}':
			return body, skipWS(b, i+1) == len(b)
		default:
			return body, false
		}
	}
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// plainString reads a JSON string at b[i] that has no escapes and no
// control characters, returning its contents and the index after it.
func plainString(b []byte, i int) ([]byte, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, i, false
	}
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return b[i+1 : j], j + 1, true
		case c == '\\' || c < 0x20:
			return nil, i, false
		}
	}
	return nil, i, false
}

// plainNumber returns the end of a number of the form 0, 12 or 12.5 at
// b[i] (i itself if there is none).
func plainNumber(b []byte, i int) int {
	j := i
	if j < len(b) && b[j] == '0' {
		j++
	} else {
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
		if j == i {
			return i
		}
	}
	if j < len(b) && b[j] == '.' {
		k := j + 1
		for k < len(b) && b[k] >= '0' && b[k] <= '9' {
			k++
		}
		if k == j+1 {
			return i
		}
		j = k
	}
	if j < len(b) && (b[j] == 'e' || b[j] == 'E' || (b[j] >= '0' && b[j] <= '9')) {
		return i // an exponent, or digits after a leading 0: encoding/json's call
	}
	return j
}
