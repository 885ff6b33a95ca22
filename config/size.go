package config

import (
	"fmt"
	"strconv"
	"strings"
)

// ByteSize is a size in bytes. The file, environment and flags accept a plain
// integer or a number with one of the units in sizeUnits, such as 512KiB or 2MB.
type ByteSize int64

// sizeUnits lists the accepted suffixes, longest first so that "KiB" is tried
// before "B".
var sizeUnits = []struct {
	suffix string
	factor int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
	{"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000},
	{"B", 1},
}

// ParseByteSize parses a size such as 1048576, 1MiB or 500KB. Spaces between
// the number and the unit are allowed, but fractions and negative sizes are not.
func ParseByteSize(s string) (ByteSize, error) {
	text := strings.TrimSpace(s)
	factor := int64(1)
	for _, unit := range sizeUnits {
		if strings.HasSuffix(text, unit.suffix) {
			text = strings.TrimSpace(strings.TrimSuffix(text, unit.suffix))
			factor = unit.factor
			break
		}
	}
	n, err := strconv.ParseInt(text, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a size: use a whole number of bytes, "+
			"optionally with a unit B, KB, MB, GB, KiB, MiB or GiB", s)
	}
	if n > 0 && factor > 1 && n > (1<<63-1)/factor {
		return 0, fmt.Errorf("%q does not fit in a 64-bit byte count", s)
	}
	return ByteSize(n * factor), nil
}

// String formats the size with the largest binary unit that divides it exactly.
func (b ByteSize) String() string {
	for _, unit := range []struct {
		suffix string
		factor ByteSize
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if b != 0 && b%unit.factor == 0 {
			return strconv.FormatInt(int64(b/unit.factor), 10) + unit.suffix
		}
	}
	return strconv.FormatInt(int64(b), 10) + "B"
}
