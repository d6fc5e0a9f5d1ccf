package legacy

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var (
	fileType     = reflect.TypeFor[File]()
	durationType = reflect.TypeFor[metav1.Duration]()
)

// checker walks a generic JSON document (numbers as json.Number) against
// a Go type's JSON tags and records every key the type does not have and
// every value of the wrong type, with its path. Key matching is exact,
// unlike encoding/json's case-folding. It returns the document without the
// offending values and with scalars meant as strings turned into strings
// (as sigs.k8s.io/yaml does: password: 1234), so the rest always decodes
// into the type and can be checked further.
type checker struct {
	errs []FieldError
}

func (c *checker) addf(path, format string, args ...any) {
	c.errs = append(c.errs, FieldError{Path: path, Message: fmt.Sprintf(format, args...)})
}

func (c *checker) check(path string, v any, t reflect.Type) any {
	if v == nil { // null: the zero value, as encoding/json does
		return nil
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == durationType {
		s, ok := v.(string)
		if !ok {
			c.addf(path, "want a duration such as \"90s\", got %s", describe(v))
			return nil
		}
		if _, err := time.ParseDuration(s); err != nil {
			c.addf(path, "%q is not a duration such as \"90s\"", s)
			return nil
		}
		return s
	}
	switch t.Kind() {
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			c.addf(path, "want a mapping, got %s", describe(v))
			return nil
		}
		fields := jsonFields(t)
		out := make(map[string]any, len(m))
		for _, k := range sortedKeys(m) {
			ft, ok := fields[k]
			if !ok {
				c.addf(path, "unknown field %q", k)
				continue
			}
			out[k] = c.check(join(path, k), m[k], ft)
		}
		return out
	case reflect.Map:
		m, ok := v.(map[string]any)
		if !ok {
			c.addf(path, "want a mapping, got %s", describe(v))
			return nil
		}
		out := make(map[string]any, len(m))
		for _, k := range sortedKeys(m) {
			if e := c.check(join(path, k), m[k], t.Elem()); e != nil {
				out[k] = e
			}
		}
		return out
	case reflect.Slice:
		a, ok := v.([]any)
		if !ok {
			c.addf(path, "want a list, got %s", describe(v))
			return nil
		}
		out := make([]any, 0, len(a))
		for i, e := range a {
			if e := c.check(fmt.Sprintf("%s[%d]", path, i), e, t.Elem()); e != nil {
				out = append(out, e)
			}
		}
		return out
	case reflect.String:
		switch v := v.(type) {
		case string:
			return v
		case json.Number:
			return string(v)
		case bool:
			return strconv.FormatBool(v)
		}
		c.addf(path, "want a string, got %s", describe(v))
	case reflect.Bool:
		if _, ok := v.(bool); ok {
			return v
		}
		c.addf(path, "want true or false, got %s", describe(v))
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if n, ok := v.(json.Number); ok {
			if _, err := strconv.ParseUint(string(n), 10, t.Bits()); err == nil {
				return n
			}
		}
		c.addf(path, "want an integer from 0 to %d, got %s", uint64(1)<<t.Bits()-1, describe(v))
	case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Int:
		if n, ok := v.(json.Number); ok {
			if _, err := strconv.ParseInt(string(n), 10, t.Bits()); err == nil {
				return n
			}
		}
		c.addf(path, "want an integer from %d to %d, got %s", int64(math.MinInt64)>>(64-t.Bits()), int64(math.MaxInt64)>>(64-t.Bits()), describe(v))
	default:
		// The File types use nothing else.
		c.addf(path, "unsupported field type %s", t)
	}
	return nil
}

// jsonFields maps the JSON names of t's exported fields to their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	fields := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		fields[name] = f.Type
	}
	return fields
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// describe names a JSON value for an error message.
func describe(v any) string {
	switch v := v.(type) {
	case string:
		return strconv.Quote(v)
	case json.Number:
		return string(v)
	case bool:
		return strconv.FormatBool(v)
	case map[string]any:
		return "a mapping"
	case []any:
		return "a list"
	}
	return fmt.Sprintf("%v", v)
}
