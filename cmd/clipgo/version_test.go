package main

import (
	"runtime/debug"
	"testing"
)

func TestVersion(t *testing.T) {
	info := func(v string, settings ...string) *debug.BuildInfo {
		b := &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Path: "github.com/clipgo/clipgo", Version: v}}
		for i := 0; i+1 < len(settings); i += 2 {
			b.Settings = append(b.Settings, debug.BuildSetting{Key: settings[i], Value: settings[i+1]})
		}
		return b
	}
	for _, tc := range []struct {
		info *debug.BuildInfo
		ok   bool
		want string
	}{
		{nil, false, "clipgo (devel): no build information in this binary"},
		{info(""), true, "clipgo (devel), commit unknown (built without version control information), go1.26.0"},
		{info("(devel)", "vcs.revision", "abc123", "vcs.time", "2026-12-07T00:00:00Z", "vcs.modified", "false"), true,
			"clipgo (devel), commit abc123 (2026-12-07T00:00:00Z), go1.26.0"},
		{info("v0.0.0-20261207000000-abc123+dirty", "vcs.revision", "abc123", "vcs.modified", "true"), true,
			"clipgo v0.0.0-20261207000000-abc123+dirty, commit abc123, with uncommitted changes, go1.26.0"},
		{info("v1.2.0", "vcs.revision", "def456"), true, "clipgo v1.2.0, commit def456, go1.26.0"},
	} {
		if got := version(tc.info, tc.ok); got != tc.want {
			t.Errorf("version = %q\nwant      %q", got, tc.want)
		}
	}
}
