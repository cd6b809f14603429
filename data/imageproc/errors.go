package imageproc

import "errors"

// Sentinel errors let callers count rejected images by reason: every error Decode returns
// wraps exactly one of them (test with errors.Is), plus the detail a user needs to act.
var (
	// ErrEmpty means there was nothing to decode: no bytes, or a header that declares a
	// zero-sized image.
	ErrEmpty = errors.New("empty image")
	// ErrTooLarge means the bytes, or the dimensions the header declares, exceed the Limits.
	ErrTooLarge = errors.New("image too large")
	// ErrUnsupported means the bytes are not one of the supported formats (JPEG, PNG, GIF,
	// WebP, BMP), or use a feature of that format the decoder does not implement.
	ErrUnsupported = errors.New("unsupported image format")
	// ErrCorrupt means the bytes claim a supported format but do not decode: truncated,
	// malformed, or a decoder that panicked on them.
	ErrCorrupt = errors.New("corrupt image")
)

// Reason returns a short stable name for the sentinel err wraps ("empty", "too_large",
// "unsupported", "corrupt"), or "other" when it wraps none; meant for reject counters and
// rejects.jsonl.
func Reason(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrEmpty):
		return "empty"
	case errors.Is(err, ErrTooLarge):
		return "too_large"
	case errors.Is(err, ErrUnsupported):
		return "unsupported"
	case errors.Is(err, ErrCorrupt):
		return "corrupt"
	}
	return "other"
}
