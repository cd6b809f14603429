package tokenizer

import (
	"hash/maphash"
	"sync"
)

const (
	// MaxCachedWords bounds the word cache of one Tokenizer (words, all shards together).
	// Caption vocabularies are small (the 30,000 Flickr8k captions have 7,359 distinct
	// words), so a full cache is rare; a full shard is simply emptied and refilled.
	MaxCachedWords = 1 << 16
	// MaxCachedWordBytes is the longest word the cache keeps; longer ones rarely repeat and
	// would let one odd text fill the cache.
	MaxCachedWordBytes = 64

	cacheShards = 64
)

// wordCache maps a pre-tokenized word (lower-cased UTF-8 bytes) to its BPE ids, like the
// cache of OpenAI's SimpleTokenizer.bpe but bounded and safe for concurrent use. It is
// sharded so that goroutines tokenizing at once rarely touch the same lock. The library's
// bpe.Cache is not used: it stores whole bpe.Word values, needs a string key (an allocation
// per lookup from bytes), and stops accepting entries for good once full.
type wordCache struct {
	seed   maphash.Seed
	shards [cacheShards]cacheShard
}

type cacheShard struct {
	mu sync.RWMutex
	m  map[string][]int32
	_  [32]byte // keep shards on separate cache lines
}

func newWordCache() *wordCache {
	c := &wordCache{seed: maphash.MakeSeed()}
	for i := range c.shards {
		c.shards[i].m = make(map[string][]int32)
	}
	return c
}

func (c *wordCache) shard(word []byte) *cacheShard {
	return &c.shards[maphash.Bytes(c.seed, word)%cacheShards]
}

// get returns the cached ids of word; the slice must not be modified.
func (c *wordCache) get(word []byte) ([]int32, bool) {
	s := c.shard(word)
	s.mu.RLock()
	ids, ok := s.m[string(word)] // no allocation: the compiler looks up without copying
	s.mu.RUnlock()
	return ids, ok
}

// put stores a copy of ids for word, unless word is too long to be worth keeping.
func (c *wordCache) put(word []byte, ids []int32) {
	if len(word) > MaxCachedWordBytes {
		return
	}
	ids = append([]int32(nil), ids...)
	s := c.shard(word)
	s.mu.Lock()
	if len(s.m) >= MaxCachedWords/cacheShards {
		clear(s.m)
	}
	s.m[string(word)] = ids
	s.mu.Unlock()
}

// len reports how many words are cached.
func (c *wordCache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}
