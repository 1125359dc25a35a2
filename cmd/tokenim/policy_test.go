package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A dry run's case file is read strictly: a misspelt field is an error,
// not an input left empty.
func TestReadCase(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	v, err := readCase(write("ok.json", `{"action":"post","sender":"bob","sender_role":"member","members":["alice","bob"],"size":12,"now":"2026-12-03T12:00:00Z"}`))
	if err != nil || v.Sender != "bob" || v.SenderRole != "member" || len(v.Members) != 2 || v.Size != 12 || v.Now.Year() != 2026 {
		t.Fatalf("readCase: %+v %v", v, err)
	}
	if v, err := readCase(write("now.json", `{"action":"post"}`)); err != nil || v.Now.IsZero() {
		t.Fatalf("without now: %+v %v", v, err)
	}
	for name, body := range map[string]string{
		"typo.json":  `{"action":"post","sender_rol":"member"}`,
		"two.json":   `{"action":"post"} {"action":"join"}`,
		"trunc.json": `{"action":"post"`,
		"type.json":  `{"size":"big"}`,
	} {
		if _, err := readCase(write(name, body)); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: %v, want an error naming the file", name, err)
		}
	}
	if _, err := readCase(""); err == nil {
		t.Error("no --input: no error")
	}
}
