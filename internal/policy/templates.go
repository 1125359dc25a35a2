package policy

import (
	"embed"
	"sort"
	"strings"
)

//go:embed templates/*.cel
var templateFS embed.FS

// Template is a policy shipped with the binary.
type Template struct {
	Name   string
	Source string
}

// Templates returns the shipped templates, sorted by name: announcement,
// company-record, ephemeral, open, read-only-after.
func Templates() []Template {
	entries, err := templateFS.ReadDir("templates")
	if err != nil {
		panic("policy: templates: " + err.Error())
	}
	var out []Template
	for _, e := range entries {
		b, err := templateFS.ReadFile("templates/" + e.Name())
		if err != nil {
			panic("policy: templates: " + err.Error())
		}
		out = append(out, Template{Name: strings.TrimSuffix(e.Name(), ".cel"), Source: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// TemplateSource returns a template's source by name.
func TemplateSource(name string) (string, bool) {
	for _, t := range Templates() {
		if t.Name == name {
			return t.Source, true
		}
	}
	return "", false
}
