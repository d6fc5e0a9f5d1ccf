package webhook

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-lb/herald/internal/config"
)

// Operation is what is done to the object under review.
type Operation int

// Operations.
const (
	Create Operation = iota
	Update
	Delete
)

// Change is one admission request: the object (a pointer to one of the
// five configuration kinds) and what happens to it. For Delete, Object is
// the object being deleted.
type Change struct {
	Op     Operation
	Kind   string
	Object metav1.Object
}

// Verdict is Review's answer.
type Verdict struct {
	// Introduced are the errors the change introduces; the change is
	// allowed when there are none.
	Introduced []config.ObjectError
	// Existing are errors the configuration has with and without the
	// change, not about the changed object.
	Existing []config.ObjectError
}

// Allowed reports whether the change may go ahead.
func (v Verdict) Allowed() bool { return len(v.Introduced) == 0 }

// Review decides a change against res, the configuration as it is without
// the change (for an update: with the old object). It is pure.
func Review(res config.Resources, opts config.Options, ch Change) (Verdict, error) {
	var after config.Resources
	var err error
	if ch.Op == Delete {
		after, err = res.Without(ch.Object)
	} else {
		after, err = res.With(ch.Object)
	}
	if err != nil {
		return Verdict{}, err
	}
	_, beforeErr := config.Build(res, opts)
	_, afterErr := config.Build(after, opts)
	// An error counts as there before when its object and field had one:
	// its text may name other objects, which the change may rename.
	before := map[errorKey]bool{}
	for _, e := range config.Errors(beforeErr) {
		before[keyOf(e)] = true
	}
	var v Verdict
	for _, e := range config.Errors(afterErr) {
		about := e.Kind == ch.Kind && e.Namespace == ch.Object.GetNamespace() && e.Name == ch.Object.GetName()
		switch {
		case about && ch.Op != Delete && e.Dangling:
			// It names an object not applied yet: objects may come in
			// any order, and the controller keeps the last good
			// configuration until it is there.
			v.Existing = append(v.Existing, e)
		case about && ch.Op != Delete, !before[keyOf(e)]:
			v.Introduced = append(v.Introduced, e)
		default:
			v.Existing = append(v.Existing, e)
		}
	}
	return v, nil
}

// errorKey is where an error is: its object and field.
type errorKey struct{ kind, namespace, name, field string }

func keyOf(e config.ObjectError) errorKey {
	return errorKey{e.Kind, e.Namespace, e.Name, e.Field}
}

// Message is the rejection message: every introduced error, each naming
// its object and field.
func (v Verdict) Message() string {
	msg := ""
	for i, e := range v.Introduced {
		if i > 0 {
			msg += "; "
		}
		msg += e.Error()
	}
	return msg
}

// maxWarnings caps the warnings sent back with an allowed change.
const maxWarnings = 5

// Warnings tell the user that the configuration still has other errors.
func (v Verdict) Warnings() []string {
	var out []string
	for i, e := range v.Existing {
		if i == maxWarnings {
			out = append(out, fmt.Sprintf("and %d more configuration errors; see the Valid condition of each object", len(v.Existing)-i))
			break
		}
		out = append(out, "the configuration has other errors, so the last good one stays in force: "+e.Error())
	}
	return out
}
