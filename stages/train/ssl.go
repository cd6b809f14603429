package train

import "fmt"

// validateSSL checks that model.ssl (SLIP's SimCLR loss, fusion.SSLConfig) has views to
// contrast: the rows of one image in a batch, data.captions_per_image of them, each with its
// own augmented view (2: SimCLR's two).
func (c Config) validateSSL() error {
	if c.Model.SSL.On() && c.Data.CaptionsPerImage < 2 {
		return fmt.Errorf("model.ssl contrasts augmented views of each image: set data.captions_per_image to 2 (SimCLR's two views, each with its own caption) or more, not %d",
			c.Data.CaptionsPerImage)
	}
	return nil
}
