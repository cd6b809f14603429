package ingest

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/clipgo/clipgo/internal/readable"
)

// MaxFolderClasses bounds the number of class directories ImageFolder accepts.
const MaxFolderClasses = 100_000

// FolderSource reads an image folder; see ImageFolder.
type FolderSource struct {
	root    *imageRoot
	classes []string
}

// ImageFolder returns a labelled source laid out as torchvision's ImageFolder:
// root/<class>/**/<image>. The classes are the directories directly under root, sorted by
// name, and a class's index in that order is its label. Hidden entries (".name") are ignored;
// files without an image extension are rejected as unsupported_type; symlinked files are
// followed only while they stay inside root, and symlinked directories are not followed. Keys
// are "<class>/<path below the class without extension>"; the caption of every image is
// NeutralCaption(class).
func ImageFolder(root string) (*FolderSource, error) {
	r, err := newImageRoot(root, DefaultMaxImageBytes)
	if err != nil {
		return nil, fmt.Errorf("image folder: %w", err)
	}
	entries, err := os.ReadDir(r.dir)
	if err != nil {
		return nil, fmt.Errorf("image folder: %w", err)
	}
	s := &FolderSource{root: r}
	for _, e := range entries { // ReadDir sorts by name
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			s.classes = append(s.classes, e.Name())
		}
	}
	switch {
	case len(s.classes) == 0:
		return nil, fmt.Errorf("image folder %s: no class directories", root)
	case len(s.classes) > MaxFolderClasses:
		return nil, fmt.Errorf("image folder %s: %d class directories, limit %d", root, len(s.classes), MaxFolderClasses)
	}
	return s, nil
}

// Name returns "imagefolder:<root>".
func (s *FolderSource) Name() string { return "imagefolder:" + s.root.dir }

// Classes returns the class directory names in label order.
func (s *FolderSource) Classes() []string { return append([]string(nil), s.classes...) }

// Scan yields the images of each class in turn, in lexical path order.
func (s *FolderSource) Scan(ctx context.Context, yield func(Item) error, reject func(Reject) error) error {
	for label, class := range s.classes {
		caption := NeutralCaption(class)
		err := filepath.WalkDir(filepath.Join(s.root.dir, class), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return fmt.Errorf("image folder: %w", err)
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if strings.HasPrefix(d.Name(), ".") {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if d.IsDir() {
				return nil
			}
			rel, err := filepath.Rel(s.root.dir, path)
			if err != nil {
				return err
			}
			if !IsImageFile(rel) {
				return reject(Reject{Origin: path, Key: keyOf(rel), Reason: ReasonUnsupportedType,
					Detail: fmt.Sprintf("extension %s is not an image format", readable.Quote(filepath.Ext(rel)))})
			}
			clean, reason, detail := s.root.resolve(rel)
			if reason != "" {
				return reject(Reject{Origin: path, Key: keyOf(rel), Reason: reason, Detail: detail})
			}
			return yield(Item{Key: keyOf(clean), Captions: []string{caption}, Label: int32p(label),
				Origin: path, Load: s.root.loader(clean)})
		})
		if err != nil {
			return err
		}
	}
	return nil
}
