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

	yamlv3 "go.yaml.in/yaml/v3"
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
// offending values and with scalars meant as strings turned into strings,
// as written (raw: password: 0123 stays "0123", as MetalLB read it, not
// the number 83 YAML makes of it), so the rest always decodes into the
// type and can be checked further. A null stays null: in a list it
// decodes to an empty entry, which the checks after this one report at
// its own index.
type checker struct {
	errs []FieldError
	// raw holds the text of the document's plain scalars by path; nil
	// when not known.
	raw map[string]string
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
			out[k] = c.check(join(path, k), m[k], t.Elem())
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
			out = append(out, c.check(fmt.Sprintf("%s[%d]", path, i), e, t.Elem()))
		}
		return out
	case reflect.String:
		switch v := v.(type) {
		case string:
			return v
		case json.Number, bool:
			if s, ok := c.raw[path]; ok {
				return s
			}
			if n, ok := v.(json.Number); ok {
				return string(n)
			}
			return strconv.FormatBool(v.(bool))
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

// maxRawNodes bounds the walk of rawScalars, whose aliases are followed.
const maxRawNodes = 100000

// rawScalars returns the text of every plain scalar of the YAML document
// data by its path (as checker names paths), nil when data does not parse.
func rawScalars(data []byte) map[string]string {
	var doc yamlv3.Node
	if err := yamlv3.Unmarshal(data, &doc); err != nil {
		return nil
	}
	out := map[string]string{}
	budget := maxRawNodes
	var walk func(path string, n *yamlv3.Node)
	walk = func(path string, n *yamlv3.Node) {
		if budget--; budget < 0 {
			return
		}
		if n.Kind == yamlv3.AliasNode && n.Alias != nil {
			n = n.Alias
		}
		switch n.Kind {
		case yamlv3.DocumentNode:
			for _, c := range n.Content {
				walk(path, c)
			}
		case yamlv3.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				walk(join(path, n.Content[i].Value), n.Content[i+1])
			}
		case yamlv3.SequenceNode:
			for i, c := range n.Content {
				walk(fmt.Sprintf("%s[%d]", path, i), c)
			}
		case yamlv3.ScalarNode:
			if n.Style == 0 || n.Style == yamlv3.TaggedStyle {
				out[path] = n.Value
			}
		}
	}
	walk("", &doc)
	return out
}
