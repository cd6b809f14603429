package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	_ "image/gif" // registered for the header check of fetched images
	_ "image/jpeg"
	_ "image/png"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	_ "golang.org/x/image/bmp"
	_ "golang.org/x/image/webp"

	"github.com/clipgo/clipgo/internal/readable"
)

// Reasons a URL's image is not downloaded; the download log keeps the details.
const (
	ReasonBadURL           = "bad_url"              // not an absolute http(s) URL
	ReasonDownloadFailed   = "download_failed"      // connection, TLS, redirect or truncated-body errors, after the retries
	ReasonDownloadTimeout  = "download_timeout"     // an attempt ran past FetchOptions.Timeout, after the retries
	ReasonHTTPStatus       = "download_http_status" // the server answered other than 200 OK
	ReasonDownloadTooLarge = "download_too_large"   // declared or sent more than the byte limit
	ReasonNotImage         = "download_not_image"   // a non-image content type, or bytes that are no image
)

// Fetch defaults.
const (
	DefaultFetchWorkers = 32
	DefaultPerHost      = 4
	DefaultFetchTimeout = 20 * time.Second
	DefaultRetries      = 2
	DefaultBackoff      = time.Second
	DefaultMaxRedirects = 5
	DefaultUserAgent    = "clipgo-prepare (+https://github.com/clipgo/clipgo)"
)

// FetchOptions tune the downloads of the urls source; a zero field means its default, but
// for Retries.
type FetchOptions struct {
	Workers      int           // concurrent downloads in all
	PerHost      int           // concurrent downloads from one host
	Timeout      time.Duration // per attempt: connecting, headers and body
	Retries      int           // further attempts after a retryable failure (0: none; the CLI's default is DefaultRetries)
	Backoff      time.Duration // wait before the first retry, doubled before each next one
	MaxRedirects int
	UserAgent    string
	// Transport carries the requests; nil means a clone of http.DefaultTransport.
	Transport http.RoundTripper
}

func (o FetchOptions) withDefaults() FetchOptions {
	if o.Workers <= 0 {
		o.Workers = DefaultFetchWorkers
	}
	if o.PerHost <= 0 {
		o.PerHost = DefaultPerHost
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultFetchTimeout
	}
	o.Retries = max(o.Retries, 0)
	if o.Backoff <= 0 {
		o.Backoff = DefaultBackoff
	}
	if o.MaxRedirects <= 0 {
		o.MaxRedirects = DefaultMaxRedirects
	}
	if o.UserAgent == "" {
		o.UserAgent = DefaultUserAgent
	}
	return o
}

// fetcher downloads images over HTTP with a limit of concurrent requests per host, a timeout
// per attempt, retries with doubling backoff and a byte cap.
type fetcher struct {
	opts     FetchOptions
	client   *http.Client
	maxBytes int64

	mu    sync.Mutex
	hosts map[string]*hostSlots // hosts with a download running or waiting
}

// hostSlots is the semaphore of one host, with the number of downloads holding or waiting
// for it: the entry goes when that falls to zero, so a list of millions of hosts does not
// keep millions of semaphores.
type hostSlots struct {
	sem   chan struct{}
	users int
}

func newFetcher(opts FetchOptions, maxBytes int64) *fetcher {
	opts = opts.withDefaults()
	tr := opts.Transport
	if tr == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = opts.PerHost
		tr = t
	}
	client := &http.Client{Transport: tr, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if len(via) > opts.MaxRedirects {
			return fmt.Errorf("more than %d redirects", opts.MaxRedirects)
		}
		if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
			return fmt.Errorf("redirect to a %s URL", readable.Quote(req.URL.Scheme))
		}
		return nil
	}}
	return &fetcher{opts: opts, client: client, maxBytes: maxBytes, hosts: map[string]*hostSlots{}}
}

// fetchResult is the outcome of all attempts at one URL.
type fetchResult struct {
	body        []byte // the image, on success
	reason      string // "" on success
	message     string
	httpStatus  int
	contentType string
	attempts    int
	retryable   bool // of the last attempt's failure
}

// checkURL returns the parsed URL, or why it cannot be fetched.
func checkURL(raw string) (*url.URL, string) {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return nil, fmt.Sprintf("not a URL: %v", err)
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Sprintf("scheme %s: only http and https URLs are fetched", readable.Quote(u.Scheme))
	case u.Host == "":
		return nil, "no host in the URL"
	}
	return u, ""
}

// fetch downloads raw with retries. A result with ctx's error is an interruption, not a
// verdict on the URL: the caller must not record it.
func (f *fetcher) fetch(ctx context.Context, raw string) (fetchResult, error) {
	u, bad := checkURL(raw)
	if bad != "" {
		return fetchResult{reason: ReasonBadURL, message: bad}, nil
	}
	var res fetchResult
	wait := f.opts.Backoff
	for attempt := 0; attempt <= f.opts.Retries; attempt++ {
		if attempt > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return res, ctx.Err()
			case <-t.C:
			}
			wait *= 2
		}
		if err := f.acquire(ctx, u.Host); err != nil {
			return res, err
		}
		res = f.once(ctx, u.String())
		f.release(u.Host)
		res.attempts = attempt + 1
		if err := ctx.Err(); err != nil && res.reason != "" {
			return res, err // a failure may be the interruption's doing: no verdict
		}
		if res.reason == "" || !res.retryable {
			break
		}
	}
	return res, nil
}

func (f *fetcher) acquire(ctx context.Context, host string) error {
	f.mu.Lock()
	h := f.hosts[host]
	if h == nil {
		h = &hostSlots{sem: make(chan struct{}, f.opts.PerHost)}
		f.hosts[host] = h
	}
	h.users++
	f.mu.Unlock()
	select {
	case h.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		f.leave(host, h)
		return ctx.Err()
	}
}

func (f *fetcher) release(host string) {
	f.mu.Lock()
	h := f.hosts[host]
	f.mu.Unlock()
	<-h.sem
	f.leave(host, h)
}

// leave drops one user of a host's slots, and the entry with the last.
func (f *fetcher) leave(host string, h *hostSlots) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if h.users--; h.users == 0 {
		delete(f.hosts, host)
	}
}

// once makes one attempt at a URL.
func (f *fetcher) once(ctx context.Context, u string) fetchResult {
	actx, cancel := context.WithTimeout(ctx, f.opts.Timeout)
	defer cancel()
	fail := func(reason string, retry bool, format string, args ...any) fetchResult {
		if reason == ReasonDownloadFailed && errors.Is(actx.Err(), context.DeadlineExceeded) && ctx.Err() == nil {
			reason, retry = ReasonDownloadTimeout, true
			format = "no complete answer within %s (" + format + ")"
			args = append([]any{f.opts.Timeout}, args...)
		}
		return fetchResult{reason: reason, retryable: retry, message: fmt.Sprintf(format, args...)}
	}
	req, err := http.NewRequestWithContext(actx, http.MethodGet, u, nil)
	if err != nil {
		return fail(ReasonBadURL, false, "%v", err)
	}
	req.Header.Set("User-Agent", f.opts.UserAgent)
	req.Header.Set("Accept", "image/*")
	resp, err := f.client.Do(req)
	if err != nil {
		return fail(ReasonDownloadFailed, isTemporary(err), "%v", unwrapURLError(err))
	}
	defer resp.Body.Close()
	ctype := resp.Header.Get("Content-Type")
	withHTTP := func(r fetchResult) fetchResult {
		r.httpStatus, r.contentType = resp.StatusCode, ctype
		return r
	}
	if resp.StatusCode != http.StatusOK {
		retry := resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500
		return withHTTP(fail(ReasonHTTPStatus, retry, "HTTP %s", resp.Status))
	}
	if !imageContentType(ctype) {
		return withHTTP(fail(ReasonNotImage, false, "content type %s is not an image", readable.Quote(ctype)))
	}
	if resp.ContentLength > f.maxBytes {
		return withHTTP(fail(ReasonDownloadTooLarge, false, "declares %d bytes, limit %d", resp.ContentLength, f.maxBytes))
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, f.maxBytes+1))
	if err != nil {
		return withHTTP(fail(ReasonDownloadFailed, true, "reading the body after %d bytes: %v", len(body), err))
	}
	if int64(len(body)) > f.maxBytes {
		return withHTTP(fail(ReasonDownloadTooLarge, false, "sent more than %d bytes", f.maxBytes))
	}
	// The content type is only what the server claims: an HTML error page served as
	// image/jpeg is common. The header must decode as one of the supported formats; the
	// full decode (and its limits) comes later, in prepare.
	if _, format, err := image.DecodeConfig(bytes.NewReader(body)); err != nil {
		return withHTTP(fail(ReasonNotImage, false, "%d bytes served as %s do not start an image: %v", len(body), readable.Quote(ctype), err))
	} else if format == "" {
		return withHTTP(fail(ReasonNotImage, false, "unknown image format"))
	}
	return withHTTP(fetchResult{body: body})
}

// imageContentType accepts image/*, the generic binary types and a missing type: what
// servers of images send. Anything else (text/html above all) is an error page or a web page.
func imageContentType(ctype string) bool {
	if ctype == "" {
		return true
	}
	mt, _, err := mime.ParseMediaType(ctype)
	if err != nil {
		return false
	}
	return strings.HasPrefix(mt, "image/") || mt == "application/octet-stream" || mt == "binary/octet-stream"
}

// isTemporary reports whether a transport error may go away on a retry: everything but a
// refused redirect and an unparsable answer.
func isTemporary(err error) bool {
	var ue *url.Error
	if errors.As(err, &ue) && strings.Contains(ue.Err.Error(), "redirect") {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	return !strings.Contains(err.Error(), "malformed HTTP")
}

// unwrapURLError drops the "Get <url>:" prefix of a client error: the log has the URL.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
