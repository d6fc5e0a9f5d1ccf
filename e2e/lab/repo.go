package lab

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
)

const modulePath = "github.com/herald-lb/herald"

// FindRepo finds the repository root: the first directory holding Herald's
// go.mod, walking up from the working directory, then from the running
// binary (bin/lab).
func FindRepo() (string, error) {
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if exe, err := os.Executable(); err == nil {
		starts = append(starts, filepath.Dir(exe))
	}
	for _, dir := range starts {
		for d := dir; ; d = filepath.Dir(d) {
			b, err := os.ReadFile(filepath.Join(d, "go.mod"))
			if err == nil && bytes.Contains(b, []byte("module "+modulePath+"\n")) {
				return d, nil
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	return "", errors.New("cannot find Herald's repository (run from inside it, or pass --repo)")
}
