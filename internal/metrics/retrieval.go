package metrics

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
)

// Retrieval holds cross-modal retrieval results for NI images and NT captions, scored by
// cosine similarity. "Image retrieval" is text→image (each caption queries the images);
// "text retrieval" is image→text (each image queries the captions), as in CLIP_benchmark.
type Retrieval struct {
	// ImageRecall[k] (image_retrieval_recall@k): fraction of captions whose image is among
	// the k best-scoring images.
	ImageRecall map[int]float64
	// TextRecall[k] (text_retrieval_recall@k): fraction of images with at least one of their
	// captions among the k best-scoring captions. An image without captions counts as a
	// miss, as in CLIP_benchmark. Both recalls are rounded to float32 as CLIP_benchmark
	// reports them.
	TextRecall map[int]float64
	// ImageRanks[t] is the 1-based rank of caption t's image among all images (text→image).
	ImageRanks []int
	// TextRanks[i] is the 1-based rank of image i's best-ranked caption among all captions
	// (image→text), 0 for an image without captions.
	TextRanks []int
	// ImageMeanRank and ImageMedianRank summarise ImageRanks over all captions;
	// TextMeanRank and TextMedianRank summarise TextRanks over images that have captions
	// (NaN if none has). The median of an even count is the mean of the middle two.
	ImageMeanRank, ImageMedianRank float64
	TextMeanRank, TextMedianRank   float64
}

// RetrievalMetrics evaluates retrieval between images [NI,D] and texts [NT,D] (row-major,
// any scale: rows are L2-normalised here), where textImage[t] is the image of text t (an
// image may have several captions). Recall is computed for each k in ks; a k larger than
// NI or NT is an error (torch.topk refuses it in CLIP_benchmark too).
//
// The NT×NI score matrix is never held: it is scored in blocks (see retrievalRanks), so
// memory grows with the inputs and the block, not with their product.
func RetrievalMetrics(images []float32, texts []float32, dim int, textImage []int, ks []int) (Retrieval, error) {
	ni, err := checkMatrix("retrieval: images", images, dim)
	if err != nil {
		return Retrieval{}, err
	}
	nt, err := checkMatrix("retrieval: texts", texts, dim)
	if err != nil {
		return Retrieval{}, err
	}
	switch {
	case ni == 0:
		return Retrieval{}, errors.New("retrieval: no images")
	case nt == 0:
		return Retrieval{}, errors.New("retrieval: no texts")
	case len(textImage) != nt:
		return Retrieval{}, fmt.Errorf("retrieval: %d text→image indices for %d texts", len(textImage), nt)
	}
	for t, i := range textImage {
		if i < 0 || i >= ni {
			return Retrieval{}, fmt.Errorf("retrieval: text %d: image index %d outside [0,%d)", t, i, ni)
		}
	}
	for _, k := range ks {
		switch {
		case k < 1:
			return Retrieval{}, fmt.Errorf("retrieval: recall@%d: k must be at least 1", k)
		case k > ni:
			return Retrieval{}, fmt.Errorf("retrieval: recall@%d: k exceeds the %d images", k, ni)
		case k > nt:
			return Retrieval{}, fmt.Errorf("retrieval: recall@%d: k exceeds the %d texts", k, nt)
		}
	}

	imageRanks, textRanks := retrievalRanks(images, texts, dim, textImage, retrievalTextBlock, retrievalImageBlock)

	res := Retrieval{
		ImageRecall: make(map[int]float64, len(ks)),
		TextRecall:  make(map[int]float64, len(ks)),
		ImageRanks:  imageRanks,
		TextRanks:   textRanks,
	}
	for _, k := range ks {
		res.ImageRecall[k] = float32Mean(countAtMost(imageRanks, k), nt)
		res.TextRecall[k] = float32Mean(countAtMost(textRanks, k), ni)
	}
	res.ImageMeanRank, res.ImageMedianRank = meanMedian(imageRanks)
	res.TextMeanRank, res.TextMedianRank = meanMedian(textRanks)
	return res, nil
}

// Metrics returns the results under CLIP_benchmark's names (image_retrieval_recall@k is
// text→image, text_retrieval_recall@k is image→text) plus clipgo's
// image_retrieval_mean_rank, image_retrieval_median_rank, text_retrieval_mean_rank and
// text_retrieval_median_rank (1-based rank of the first correct answer; see Retrieval).
func (r Retrieval) Metrics() map[string]float64 {
	m := make(map[string]float64, 2*len(r.ImageRecall)+4)
	for k, v := range r.ImageRecall {
		m["image_retrieval_recall@"+strconv.Itoa(k)] = v
	}
	for k, v := range r.TextRecall {
		m["text_retrieval_recall@"+strconv.Itoa(k)] = v
	}
	m["image_retrieval_mean_rank"] = r.ImageMeanRank
	m["image_retrieval_median_rank"] = r.ImageMedianRank
	m["text_retrieval_mean_rank"] = r.TextMeanRank
	m["text_retrieval_median_rank"] = r.TextMedianRank
	return m
}

// countAtMost counts the ranks in 1..k (a 0 rank means no answer and never counts).
func countAtMost(ranks []int, k int) int {
	n := 0
	for _, r := range ranks {
		if r >= 1 && r <= k {
			n++
		}
	}
	return n
}

// meanMedian returns the mean and median of the positive ranks (NaN, NaN if none).
func meanMedian(ranks []int) (mean, median float64) {
	var vals []int
	sum := 0
	for _, r := range ranks {
		if r > 0 {
			vals = append(vals, r)
			sum += r
		}
	}
	if len(vals) == 0 {
		return nan(), nan()
	}
	slices.Sort(vals)
	h := len(vals) / 2
	if len(vals)%2 == 1 {
		median = float64(vals[h])
	} else {
		median = (float64(vals[h-1]) + float64(vals[h])) / 2
	}
	return float64(sum) / float64(len(vals)), median
}
