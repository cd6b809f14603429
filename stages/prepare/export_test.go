package prepare

// KeyFraction is keyFraction, for the tests of package prepare_test.
var KeyFraction = keyFraction
