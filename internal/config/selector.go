package config

import (
	"fmt"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/labels"
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

// sameSelectors reports whether two selector lists select the same way:
// the same selectors, in any order.
func sameSelectors(a, b []model.Selector) bool {
	return slices.Equal(selectorStrings(a), selectorStrings(b))
}

func selectorStrings(sels []model.Selector) []string {
	s := make([]string, len(sels))
	for i, sel := range sels {
		s[i] = sel.String()
	}
	slices.Sort(s)
	return slices.Compact(s)
}
