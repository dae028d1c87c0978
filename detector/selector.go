package detector

import (
	"fmt"
	"regexp"
)

// MatchType is the kind of a label matcher, as in PromQL.
type MatchType int

const (
	MatchEqual MatchType = iota
	MatchNotEqual
	MatchRegexp
	MatchNotRegexp
)

// Matcher selects series by one label, with PromQL semantics: a missing label
// has the value "", and regular expressions are fully anchored.
type Matcher struct {
	Type  MatchType
	Name  string
	Value string
	re    *regexp.Regexp
}

// NewMatcher returns a matcher, compiling the regular expression if needed.
func NewMatcher(t MatchType, name, value string) (*Matcher, error) {
	m := &Matcher{Type: t, Name: name, Value: value}
	if t == MatchRegexp || t == MatchNotRegexp {
		re, err := regexp.Compile("^(?s:" + value + ")$")
		if err != nil {
			return nil, fmt.Errorf("cannot compile regexp %q of label %q: %w", value, name, err)
		}
		m.re = re
	}
	return m, nil
}

// Matches reports whether v satisfies the matcher.
func (m *Matcher) Matches(v string) bool {
	switch m.Type {
	case MatchEqual:
		return v == m.Value
	case MatchNotEqual:
		return v != m.Value
	case MatchRegexp:
		return m.re.MatchString(v)
	case MatchNotRegexp:
		return !m.re.MatchString(v)
	}
	return false
}

// Selector is a conjunction of matchers, like one PromQL series selector.
type Selector []*Matcher

// Matches reports whether every matcher accepts the label set.
func (s Selector) Matches(ls Labels) bool {
	for _, m := range s {
		if !m.Matches(ls.Get(m.Name)) {
			return false
		}
	}
	return true
}

// Selection is a disjunction of selectors; an empty Selection selects everything.
type Selection []Selector

// Matches reports whether any selector accepts the label set.
func (s Selection) Matches(ls Labels) bool {
	if len(s) == 0 {
		return true
	}
	for _, sel := range s {
		if sel.Matches(ls) {
			return true
		}
	}
	return false
}
