package readable

import "testing"

func TestQuote(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"../etc/x.png", "'../etc/x.png'"},
		{`a photo of the number: "{}".`, `'a photo of the number: "{}".'`},
		{"", "''"},
		{"it's", `"it's"`},
		{"a\nb", `"a\nb"`},
		{"bad\xff", `"bad\xff"`},
		{`back\slash`, `"back\\slash"`},
	} {
		if got := Quote(tc.in); got != tc.want {
			t.Errorf("Quote(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}
