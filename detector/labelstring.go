package detector

import (
	"encoding/binary"
	"strings"
)

// labelString is a series' label set in one immutable string: per label, the
// uvarint length of the name, the name, the uvarint length of the value and
// the value, in Labels order. A series keeps its labels this way because a
// Labels slice costs 32 bytes of string headers per label on top of the
// bytes themselves (160 of a typical series' 1.1 KiB). Strings decoded from
// it alias it, so they may be kept; the slices they are decoded into are
// the caller's.
type labelString string

func encodeLabels(ls Labels) labelString {
	n := 0
	for _, l := range ls {
		n += uvarintLen(len(l.Name)) + len(l.Name) + uvarintLen(len(l.Value)) + len(l.Value)
	}
	var b strings.Builder
	b.Grow(n)
	var tmp [binary.MaxVarintLen64]byte
	for _, l := range ls {
		b.Write(binary.AppendUvarint(tmp[:0], uint64(len(l.Name))))
		b.WriteString(l.Name)
		b.Write(binary.AppendUvarint(tmp[:0], uint64(len(l.Value))))
		b.WriteString(l.Value)
	}
	return labelString(b.String())
}

func uvarintLen(n int) int {
	k := 1
	for ; n >= 0x80; n >>= 7 {
		k++
	}
	return k
}

// next splits the label at offset i of ls and returns the offset after it.
func (ls labelString) next(i int) (name, value string, after int) {
	name, i = ls.field(i)
	value, i = ls.field(i)
	return name, value, i
}

func (ls labelString) field(i int) (string, int) {
	n, k := uvarint(ls, i)
	i += k
	return string(ls[i : i+n]), i + n
}

// uvarint decodes the uvarint at offset i; ls was built by encodeLabels, so
// it is well formed.
func uvarint(ls labelString, i int) (n, size int) {
	var x uint64
	var s uint
	for k := i; ; k++ {
		c := ls[k]
		if c < 0x80 {
			return int(x | uint64(c)<<s), k - i + 1
		}
		x |= uint64(c&0x7f) << s
		s += 7
	}
}

// appendTo decodes ls onto dst.
func (ls labelString) appendTo(dst Labels) Labels {
	for i := 0; i < len(ls); {
		var l Label
		l.Name, l.Value, i = ls.next(i)
		dst = append(dst, l)
	}
	return dst
}

// labels decodes ls into a new slice the caller may keep.
func (ls labelString) labels() Labels {
	if ls == "" {
		return nil
	}
	n := 0
	for i := 0; i < len(ls); n++ {
		_, _, i = ls.next(i)
	}
	return ls.appendTo(make(Labels, 0, n))
}

// equal reports whether ls holds exactly the label set b. It runs on every
// appended series, so it compares in place, with a fast path for names and
// values shorter than 128 bytes (one-byte lengths).
func (ls labelString) equal(b Labels) bool {
	i := 0
	for k := range b {
		name, value := b[k].Name, b[k].Value
		nn, nv := len(name), len(value)
		if nn < 0x80 && nv < 0x80 {
			end := i + 2 + nn + nv
			if end > len(ls) || ls[i] != byte(nn) || ls[i+1+nn] != byte(nv) ||
				string(ls[i+1:i+1+nn]) != name || string(ls[i+2+nn:end]) != value {
				return false
			}
			i = end
			continue
		}
		if i >= len(ls) {
			return false
		}
		var n, v string
		n, v, i = ls.next(i)
		if n != name || v != value {
			return false
		}
	}
	return i == len(ls)
}

// Get returns the value of the label called name, or "".
func (ls labelString) Get(name string) string {
	for i := 0; i < len(ls); {
		var n, v string
		n, v, i = ls.next(i)
		if n == name {
			return v
		}
	}
	return ""
}
