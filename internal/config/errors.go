package config

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ObjectError is one problem with one configuration object.
//
// Kind is the object's kind ("IPAddressPool", ...), or "ConfigMap" for
// problems in the legacy ConfigMap, whose Field is then a path in its data.
// The caller sets a status condition on the named object; there is none to
// set for Kind "ConfigMap".
type ObjectError struct {
	Kind      string
	Namespace string
	Name      string
	// Field is the path of the offending field, "spec.addresses[1]";
	// empty when the problem is with the object as a whole.
	Field   string
	Message string
	// Dangling marks a reference to an object that does not exist (a
	// Community alias, a BFDProfile): the configuration is wrong until it
	// exists, but the object may simply have been applied before it.
	Dangling bool
}

// KindConfigMap is ObjectError.Kind for problems in the legacy ConfigMap.
const KindConfigMap = "ConfigMap"

func (e ObjectError) Error() string {
	var b strings.Builder
	if e.Kind == KindConfigMap {
		fmt.Fprintf(&b, "ConfigMap %s/%s: ", e.Namespace, e.Name)
	} else {
		fmt.Fprintf(&b, "%s %q: ", e.Kind, e.Name)
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Message)
	return b.String()
}

// Error is every problem Build found, sorted. Its text is one line per
// problem.
type Error struct {
	Errors []ObjectError
}

func (e *Error) Error() string {
	lines := make([]string, len(e.Errors))
	for i, oe := range e.Errors {
		lines[i] = oe.Error()
	}
	return strings.Join(lines, "\n")
}

// Errors returns the problems held by err (an *Error, possibly wrapped),
// or nil.
func Errors(err error) []ObjectError {
	var e *Error
	if errors.As(err, &e) {
		return e.Errors
	}
	return nil
}

var kindRank = map[string]int{
	KindConfigMap:      0,
	"IPAddressPool":    1,
	"L2Advertisement":  2,
	"BGPAdvertisement": 3,
	"BGPPeer":          4,
	"Community":        5,
	"BFDProfile":       6,
}

// sortErrors orders errors by kind, namespace, name, field (numbers in
// indices compared as numbers) and message, and drops exact duplicates.
func sortErrors(errs []ObjectError) []ObjectError {
	slices.SortFunc(errs, func(a, b ObjectError) int {
		return cmp.Or(
			cmp.Compare(kindRank[a.Kind], kindRank[b.Kind]),
			cmp.Compare(a.Kind, b.Kind),
			cmp.Compare(a.Namespace, b.Namespace),
			cmp.Compare(a.Name, b.Name),
			naturalCompare(a.Field, b.Field),
			cmp.Compare(a.Message, b.Message),
		)
	})
	return slices.Compact(errs)
}

// naturalCompare compares strings with runs of digits compared by value,
// so "a[2]" sorts before "a[10]".
func naturalCompare(a, b string) int {
	for a != "" && b != "" {
		if isDigit(a[0]) && isDigit(b[0]) {
			da, db := digitRun(a), digitRun(b)
			na, nb := strings.TrimLeft(a[:da], "0"), strings.TrimLeft(b[:db], "0")
			if c := cmp.Or(cmp.Compare(len(na), len(nb)), cmp.Compare(na, nb), cmp.Compare(da, db)); c != 0 {
				return c
			}
			a, b = a[da:], b[db:]
			continue
		}
		if c := cmp.Compare(a[0], b[0]); c != 0 {
			return c
		}
		a, b = a[1:], b[1:]
	}
	return cmp.Compare(len(a), len(b))
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func digitRun(s string) int {
	i := 0
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	return i
}
