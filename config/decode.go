package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// decodeValue stores raw, as found in the file, the environment or a flag, into
// the field ptr points to. Environment variables and most flags arrive as
// strings, YAML scalars as string, int, float64 or bool, YAML lists as []any
// and list flags as []string.
func decodeValue(key string, raw any, ptr any) error {
	switch field := ptr.(type) {
	case *string:
		s, ok := raw.(string)
		if !ok {
			return invalid(key, raw, "use a string; quote it in YAML")
		}
		*field = s
	case *[]string:
		list, err := decodeList(key, raw)
		if err != nil {
			return err
		}
		*field = list
	case *[]uint32:
		list, err := decodeUint32List(key, raw)
		if err != nil {
			return err
		}
		*field = list
	case *time.Duration:
		d, err := decodeDuration(key, raw)
		if err != nil {
			return err
		}
		*field = d
	case *int:
		n, err := decodeInt(key, raw, math.MaxInt32)
		if err != nil {
			return err
		}
		*field = int(n)
	case *uint64:
		n, err := decodeInt(key, raw, math.MaxInt64)
		if err != nil {
			return err
		}
		*field = uint64(n)
	case *ByteSize:
		size, err := decodeSize(key, raw)
		if err != nil {
			return err
		}
		*field = size
	default:
		return fmt.Errorf("config: %s: field type %T has no decoder", key, ptr)
	}
	return nil
}

// decodeList accepts a YAML list of strings, the []string of a list flag, or
// one string of comma-separated values as in an environment variable. Spaces
// around each value are dropped. An empty string is an empty list, returned as
// nil, except for the allowed_id_prefixes keys, where it is rejected. An empty
// value inside a list is rejected as a likely stray comma.
func decodeList(key string, raw any) ([]string, error) {
	const hint = "use comma-separated values without empty entries, or a YAML list"
	var items []string
	switch v := raw.(type) {
	case string:
		if strings.TrimSpace(v) == "" {
			if strings.HasSuffix(key, "allowed_id_prefixes") {
				// An empty policy would allow every ID of the trust domain, which a
				// template or a typo should not do silently.
				return nil, invalid(key, raw, "remove the key to allow every SPIFFE ID "+
					"of the trust domain, or list the allowed prefixes")
			}
			return nil, nil
		}
		items = strings.Split(v, ",")
	case []string:
		items = v
	case []any:
		for _, item := range v {
			text, ok := item.(string)
			if !ok {
				return nil, invalid(key, raw, "use a list of strings; quote each value in YAML")
			}
			items = append(items, text)
		}
	default:
		return nil, invalid(key, raw, hint)
	}
	list := make([]string, 0, len(items))
	for _, item := range items {
		item = strings.TrimSpace(item)
		if item == "" {
			return nil, invalid(key, raw, hint)
		}
		list = append(list, item)
	}
	if len(list) == 0 {
		// The same value as the default, so that an empty list equals no list.
		return nil, nil
	}
	return list, nil
}

// decodeUint32List accepts what decodeList accepts, with each entry a decimal
// number from 0 to 2^32-1, and also YAML integers. It returns nil for an empty
// list.
func decodeUint32List(key string, raw any) ([]uint32, error) {
	const hint = "use whole numbers from 0 to 4294967295, comma-separated or as a " +
		"YAML list, such as 1000,1001"
	var texts []string
	switch v := raw.(type) {
	case int:
		texts = []string{strconv.Itoa(v)}
	case []any:
		for _, item := range v {
			switch n := item.(type) {
			case int:
				texts = append(texts, strconv.Itoa(n))
			case string:
				texts = append(texts, n)
			default:
				return nil, invalid(key, raw, hint)
			}
		}
		if len(texts) == 0 {
			return nil, nil
		}
	default:
		list, err := decodeList(key, raw)
		if err != nil {
			return nil, invalid(key, raw, hint)
		}
		texts = list
	}
	var out []uint32
	for _, text := range texts {
		n, err := strconv.ParseUint(strings.TrimSpace(text), 10, 32)
		if err != nil {
			return nil, invalid(key, raw, hint)
		}
		out = append(out, uint32(n))
	}
	return out, nil
}

// decodeDuration accepts a Go duration string. A bare number is rejected
// because it would silently mean nanoseconds.
func decodeDuration(key string, raw any) (time.Duration, error) {
	const hint = "use a Go duration with a unit, such as 30s, 5m or 168h"
	switch v := raw.(type) {
	case time.Duration:
		return v, nil
	case string:
		d, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil {
			return 0, invalid(key, raw, hint)
		}
		return d, nil
	default:
		return 0, invalid(key, raw, hint)
	}
}

// decodeInt accepts a whole number from 0 to limit, or its decimal text.
func decodeInt(key string, raw any, limit int64) (int64, error) {
	hint := fmt.Sprintf("use a whole number from 0 to %d", limit)
	var n int64
	switch v := raw.(type) {
	case int:
		n = int64(v)
	case int64:
		n = v
	case uint64:
		if v > uint64(limit) {
			return 0, invalid(key, raw, hint)
		}
		n = int64(v)
	case string:
		parsed, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return 0, invalid(key, raw, hint)
		}
		n = parsed
	default:
		return 0, invalid(key, raw, hint)
	}
	if n < 0 || n > limit {
		return 0, invalid(key, raw, hint)
	}
	return n, nil
}

func decodeSize(key string, raw any) (ByteSize, error) {
	switch v := raw.(type) {
	case int:
		if v < 0 {
			return 0, invalid(key, raw, "use a size of at least 0 bytes")
		}
		return ByteSize(v), nil
	case int64:
		if v < 0 {
			return 0, invalid(key, raw, "use a size of at least 0 bytes")
		}
		return ByteSize(v), nil
	case string:
		size, err := ParseByteSize(v)
		if err != nil {
			return 0, invalid(key, raw, "use a whole number of bytes, "+
				"optionally with a unit B, KB, MB, GB, KiB, MiB or GiB")
		}
		return size, nil
	default:
		return 0, invalid(key, raw, "use a whole number of bytes or a size such as 1MiB")
	}
}

// secretKeys are the keys whose values never appear in an error message.
var secretKeys = map[string]bool{"cluster.gossip_key": true}

// hiddenSecret replaces the value of a secret key in error messages.
const hiddenSecret = "(secret, not shown)"

// invalid builds the error for a value outside the accepted set:
// "config: <key>: invalid value <value>: <hint>".
func invalid(key string, value any, hint string) error {
	return fmt.Errorf("config: %s: invalid value %s: %s", key, formatKeyValue(key, value), hint)
}

// missing builds the error for a required key without a value.
func missing(key, hint string) error {
	return fmt.Errorf("config: %s: missing value: %s", key, hint)
}

// formatKeyValue formats a value for an error about key, hiding secrets.
func formatKeyValue(key string, value any) string {
	if secretKeys[key] {
		return hiddenSecret
	}
	return formatValue(value)
}

func formatValue(value any) string {
	switch v := value.(type) {
	case string:
		return strconv.Quote(v)
	case time.Duration:
		return v.String()
	case []string:
		return strconv.Quote(strings.Join(v, ","))
	case []uint32:
		texts := make([]string, len(v))
		for i, n := range v {
			texts[i] = strconv.FormatUint(uint64(n), 10)
		}
		return strconv.Quote(strings.Join(texts, ","))
	default:
		return fmt.Sprint(v)
	}
}
