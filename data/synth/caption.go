package synth

import "strings"

// A template writes one caption of a scene. Templates only ever state attributes the scene
// has; which optional ones (sizes, background, position) they mention varies, so a model
// meets each attribute word in many contexts.
type template func(r *rng, s Sample) string

var oneObject = []template{
	func(r *rng, s Sample) string {
		return nounPhrase(r, s.Objects[0]) + " " + s.Objects[0].Position.String() + "."
	},
	func(r *rng, s Sample) string { return "a photo of " + nounPhrase(r, s.Objects[0]) + "." },
	func(r *rng, s Sample) string {
		return nounPhrase(r, s.Objects[0]) + " " + s.Objects[0].Position.String() + " on " + backdrop(s) + "."
	},
	func(r *rng, s Sample) string { return nounPhrase(r, s.Objects[0]) + " on " + backdrop(s) + "." },
	func(r *rng, s Sample) string {
		return backdrop(s) + " with " + nounPhrase(r, s.Objects[0]) + " " + s.Objects[0].Position.String() + "."
	},
	func(r *rng, s Sample) string {
		return "there is " + nounPhrase(r, s.Objects[0]) + " " + s.Objects[0].Position.String() + "."
	},
	func(r *rng, s Sample) string { return "a drawing of " + nounPhrase(r, s.Objects[0]) + "." },
	func(r *rng, s Sample) string {
		return "a picture of " + nounPhrase(r, s.Objects[0]) + " " + s.Objects[0].Position.String() + "."
	},
}

var twoObjects = []template{
	func(r *rng, s Sample) string { return related(r, s) + "." },
	func(r *rng, s Sample) string { return related(r, s) + " on " + backdrop(s) + "." },
	func(r *rng, s Sample) string { return "a photo of " + both(r, s) + "." },
	func(r *rng, s Sample) string { return both(r, s) + " on " + backdrop(s) + "." },
	func(r *rng, s Sample) string { return "there is " + related(r, s) + "." },
	func(r *rng, s Sample) string { return backdrop(s) + " with " + related(r, s) + "." },
	func(r *rng, s Sample) string { return "a picture of " + both(r, s) + "." },
}

// describe returns CaptionsPerScene captions of s from distinct templates.
func describe(r *rng, s Sample) []string {
	ts := oneObject
	if len(s.Objects) == 2 {
		ts = twoObjects
	}
	order := make([]int, len(ts))
	for i := range order {
		order[i] = i
	}
	caps := make([]string, CaptionsPerScene)
	for k := range caps { // a partial Fisher–Yates shuffle picks distinct templates
		j := k + r.intn(len(order)-k)
		order[k], order[j] = order[j], order[k]
		caps[k] = ts[order[k]](r, s)
	}
	return caps
}

// nounPhrase names o with its article, "a red circle", stating its size half of the time
// ("a small red circle").
func nounPhrase(r *rng, o Object) string {
	words := o.Pair.String()
	if r.float() < 0.5 {
		words = o.Size.String() + " " + words
	}
	return article(words) + " " + words
}

// related states the relation of a two-object scene, in either direction: "a red circle above a
// blue square" or "a blue square below a red circle".
func related(r *rng, s Sample) string {
	a, b := s.Objects[0], s.Objects[1]
	forward, converse := "above", "below"
	if s.Relation == LeftOf {
		forward, converse = "to the left of", "to the right of"
	}
	if r.float() < 0.5 {
		return nounPhrase(r, a) + " " + forward + " " + nounPhrase(r, b)
	}
	return nounPhrase(r, b) + " " + converse + " " + nounPhrase(r, a)
}

// both names the two objects of s in either order, without their relation.
func both(r *rng, s Sample) string {
	a, b := s.Objects[0], s.Objects[1]
	if r.float() < 0.5 {
		a, b = b, a
	}
	return nounPhrase(r, a) + " and " + nounPhrase(r, b)
}

// backdrop names the background, "a grey background".
func backdrop(s Sample) string {
	w := s.Background.String()
	return article(w) + " " + w + " background"
}

// article returns the indefinite article for a phrase starting with words.
func article(words string) string {
	if strings.IndexByte("aeiou", words[0]) >= 0 {
		return "an"
	}
	return "a"
}
