package config

import (
	"fmt"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/herald-lb/herald/internal/model"
)

// selector adapts a labels.Selector to model.Selector.
type selector struct {
	sel labels.Selector
}

var _ model.Selector = selector{}

func (s selector) Matches(l map[string]string) bool { return s.sel.Matches(labels.Set(l)) }
func (s selector) String() string                   { return s.sel.String() }

// selectors converts the label selectors at path (e.g. "spec.nodeSelectors"),
// reporting each invalid one with the path of its offending part. ok is
// false when any was invalid.
func (b *builder) selectors(o *object, path string, in []metav1.LabelSelector) (out []model.Selector, ok bool) {
	ok = true
	for i := range in {
		p := fmt.Sprintf("%s[%d]", path, i)
		if errs := metav1validation.ValidateLabelSelector(&in[i], metav1validation.LabelSelectorValidationOptions{}, field.NewPath(p)); len(errs) > 0 {
			for _, e := range errs {
				b.add(o, e.Field, "%s", e.ErrorBody())
			}
			ok = false
			continue
		}
		s, err := metav1.LabelSelectorAsSelector(&in[i])
		if err != nil {
			b.add(o, p, "%v", err)
			ok = false
			continue
		}
		out = append(out, selector{s})
	}
	return out, ok
}

func selectorStrings(sels []model.Selector) []string {
	s := make([]string, len(sels))
	for i, sel := range sels {
		s[i] = sel.String()
	}
	slices.Sort(s)
	return slices.Compact(s)
}

// mayOverlap reports whether some node's labels could match both selector
// lists (an empty list matches every node). It answers false only when
// that is impossible: every pair of selectors, one from each list, puts
// contradicting requirements on some label (zone=a against zone=b, In
// sets without a common value, Exists against DoesNotExist).
func mayOverlap(a, b []model.Selector) bool {
	if len(a) == 0 || len(b) == 0 {
		return true
	}
	for _, x := range a {
		for _, y := range b {
			if !disjoint(x, y) {
				return true
			}
		}
	}
	return false
}

// disjoint reports whether no label set can match both x and y.
func disjoint(x, y model.Selector) bool {
	sx, okx := x.(selector)
	sy, oky := y.(selector)
	if !okx || !oky {
		return false
	}
	rx, selx := sx.sel.Requirements()
	ry, sely := sy.sel.Requirements()
	if !selx || !sely {
		return true // one matches nothing
	}
	byKey := map[string][]labels.Requirement{}
	for _, r := range append(slices.Clip(rx), ry...) {
		byKey[r.Key()] = append(byKey[r.Key()], r)
	}
	for _, reqs := range byKey {
		if !satisfiable(reqs) {
			return true
		}
	}
	return false
}

// satisfiable reports whether one label can meet every requirement of
// reqs (all on that label). Numeric comparisons are taken as always
// satisfiable.
func satisfiable(reqs []labels.Requirement) bool {
	present, absent := false, false
	var allowed map[string]bool // nil: any value
	excluded := map[string]bool{}
	for _, r := range reqs {
		switch r.Operator() {
		case selection.Equals, selection.DoubleEquals, selection.In:
			present = true
			vals := r.Values()
			if allowed == nil {
				allowed = map[string]bool{}
				for v := range vals {
					allowed[v] = true
				}
				continue
			}
			for v := range allowed {
				if !vals.Has(v) {
					delete(allowed, v)
				}
			}
		case selection.NotEquals, selection.NotIn:
			for v := range r.Values() {
				excluded[v] = true
			}
		case selection.Exists, selection.GreaterThan, selection.LessThan:
			present = true
		case selection.DoesNotExist:
			absent = true
		}
	}
	if present && absent {
		return false
	}
	if allowed == nil {
		return true
	}
	for v := range allowed {
		if !excluded[v] {
			return true
		}
	}
	return false
}
