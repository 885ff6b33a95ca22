package raft

import (
	"bytes"
	"fmt"
)

// checkPages walks the freelist and every bucket from the root, then checks that
// every page below the high-water mark is either reachable or free.
func (c *boltCheck) checkPages() error {
	words := (c.meta.pageCount + 63) / 64
	c.reachable = make([]uint64, words)
	c.free = make([]uint64, words)
	setBit(c.reachable, 0)
	setBit(c.reachable, 1)
	if c.meta.freelist != boltNoFreelist {
		if err := c.readFreelist(); err != nil {
			return err
		}
	}
	if err := c.walkBucket(c.meta.root); err != nil {
		return err
	}
	if c.meta.freelist == boltNoFreelist {
		// bbolt treats every unreachable page as free.
		return nil
	}
	for id := uint64(2); id < c.meta.pageCount; id++ {
		if !hasBit(c.reachable, id) && !hasBit(c.free, id) {
			return damaged("page %d is neither reachable nor free", id)
		}
	}
	return nil
}

// readFreelist marks the freelist's own pages reachable and the pages it lists
// free.
func (c *boltCheck) readFreelist() error {
	id := c.meta.freelist
	page, err := c.readPage(id, "the freelist")
	if err != nil {
		return err
	}
	if page.flags&boltFreelistPage == 0 {
		return damaged("the freelist page %d has the type %s", id, pageType(page.flags))
	}
	start, count := boltPageHeaderSize, uint64(page.count)
	if count == boltFreelistCountOverflow {
		if len(page.data) < start+8 {
			return damaged("the freelist page %d is too short for its count", id)
		}
		count = boltOrder.Uint64(page.data[start:])
		start += 8
	}
	if count > uint64(len(page.data)-start)/8 {
		return damaged("the freelist page %d lists %d pages, more than fit in it", id, count)
	}
	for i := range count {
		freeID := boltOrder.Uint64(page.data[start+int(i)*8:])
		switch {
		case freeID < 2 || freeID >= c.meta.pageCount:
			return damaged("the freelist lists page %d, outside pages 2 to %d", freeID,
				c.meta.pageCount-1)
		case hasBit(c.free, freeID):
			return damaged("the freelist lists page %d twice", freeID)
		case hasBit(c.reachable, freeID):
			return damaged("the freelist lists its own page %d", freeID)
		}
		setBit(c.free, freeID)
	}
	return nil
}

// walkBucket checks the B+tree of one bucket and, through the bucket headers in
// its leaves, of every bucket nested in it. It uses a stack of page IDs instead
// of recursion, so that a damaged file cannot make it recurse deeply.
func (c *boltCheck) walkBucket(root uint64) error {
	stack := []uint64{root}
	for len(stack) > 0 {
		id := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		page, err := c.readPage(id, "a bucket")
		if err != nil {
			return err
		}
		children, err := c.checkTreePage(page)
		if err != nil {
			return err
		}
		stack = append(stack, children...)
	}
	return nil
}

// boltPage is one page read from the file, with its overflow pages.
type boltPage struct {
	id       uint64
	flags    uint16
	count    uint16
	overflow uint32
	data     []byte
}

// readPage reads page id and its overflow pages, and marks them reachable.
// referrer names the structure that refers to the page, for the error. The
// returned data is valid until the next readPage.
func (c *boltCheck) readPage(id uint64, referrer string) (boltPage, error) {
	if id < 2 || id >= c.meta.pageCount {
		return boltPage{}, damaged("%s refers to page %d, outside pages 2 to %d", referrer,
			id, c.meta.pageCount-1)
	}
	first, err := c.readAt(id, c.pageSize, 0)
	if err != nil {
		return boltPage{}, err
	}
	page := boltPage{
		id:       boltOrder.Uint64(first[0:]),
		flags:    boltOrder.Uint16(first[8:]),
		count:    boltOrder.Uint16(first[10:]),
		overflow: boltOrder.Uint32(first[12:]),
	}
	if page.id != id {
		return boltPage{}, damaged("page %d, referred to by %s, records the ID %d, so it "+
			"was overwritten", id, referrer, page.id)
	}
	last := id + uint64(page.overflow)
	if last >= c.meta.pageCount {
		return boltPage{}, damaged("page %d has %d overflow pages, past the last page %d",
			id, page.overflow, c.meta.pageCount-1)
	}
	for p := id; p <= last; p++ {
		switch {
		case hasBit(c.reachable, p):
			return boltPage{}, damaged("page %d is referred to twice", p)
		case hasBit(c.free, p):
			return boltPage{}, damaged("page %d is in use and also in the freelist", p)
		}
		setBit(c.reachable, p)
	}
	page.data = first
	if page.overflow > 0 {
		size := (int(page.overflow) + 1) * c.pageSize
		if page.data, err = c.readAt(id, size, c.pageSize); err != nil {
			return boltPage{}, err
		}
	}
	return page, nil
}

// readAt returns size bytes from the start of page id in c.buffer. The first
// have bytes are already there, from the previous call for the same page.
func (c *boltCheck) readAt(id uint64, size, have int) ([]byte, error) {
	if cap(c.buffer) < size {
		grown := make([]byte, size)
		copy(grown, c.buffer[:have])
		c.buffer = grown
	}
	data := c.buffer[:size]
	offset := int64(id) * int64(c.pageSize)
	if _, err := c.file.ReadAt(data[have:], offset+int64(have)); err != nil {
		return nil, fmt.Errorf("read page %d: %w", id, err)
	}
	return data, nil
}

// checkTreePage checks a branch or leaf page of a bucket and returns the pages it
// refers to: the children of a branch, the roots of the buckets nested in a leaf.
func (c *boltCheck) checkTreePage(page boltPage) ([]uint64, error) {
	switch {
	case page.flags&boltBranchPage != 0:
		return c.checkBranch(page)
	case page.flags&boltLeafPage != 0:
		return checkLeafElements(page.data, page.count, place{page: page.id})
	}
	return nil, damaged("page %d is in a bucket but has the type %s", page.id,
		pageType(page.flags))
}

func (c *boltCheck) checkBranch(page boltPage) ([]uint64, error) {
	if page.count == 0 {
		return nil, damaged("branch page %d has no elements", page.id)
	}
	where := place{page: page.id}
	children := make([]uint64, 0, page.count)
	var previous []byte
	for i := range int(page.count) {
		at := boltPageHeaderSize + i*boltBranchElementSize
		if at+boltBranchElementSize > len(page.data) {
			return nil, damaged("%s has %d elements, more than fit in it", where, page.count)
		}
		pos := uint64(boltOrder.Uint32(page.data[at:]))
		size := uint64(boltOrder.Uint32(page.data[at+4:]))
		key, err := slice(page.data, uint64(at)+pos, size, where, i)
		if err != nil {
			return nil, err
		}
		if err := checkKeyOrder(previous, key, where, i); err != nil {
			return nil, err
		}
		previous = key
		children = append(children, boltOrder.Uint64(page.data[at+8:]))
	}
	return children, nil
}

// checkLeafElements checks the elements of a leaf page, or of the page inline in
// a small bucket's value, held in data. It returns the root pages of the nested
// buckets that are not inline.
func checkLeafElements(data []byte, count uint16, where place) ([]uint64, error) {
	var roots []uint64
	var previous []byte
	for i := range int(count) {
		at := boltPageHeaderSize + i*boltLeafElementSize
		if at+boltLeafElementSize > len(data) {
			return nil, damaged("%s has %d elements, more than fit in it", where, count)
		}
		flags := boltOrder.Uint32(data[at:])
		pos := uint64(boltOrder.Uint32(data[at+4:]))
		keySize := uint64(boltOrder.Uint32(data[at+8:]))
		valueSize := uint64(boltOrder.Uint32(data[at+12:]))
		if flags&^boltBucketLeaf != 0 {
			return nil, damaged("%s element %d has the unknown flags %#x", where, i, flags)
		}
		key, err := slice(data, uint64(at)+pos, keySize, where, i)
		if err != nil {
			return nil, err
		}
		if err := checkKeyOrder(previous, key, where, i); err != nil {
			return nil, err
		}
		previous = key
		value, err := slice(data, uint64(at)+pos+keySize, valueSize, where, i)
		if err != nil {
			return nil, err
		}
		if flags&boltBucketLeaf == 0 {
			continue
		}
		nested, err := checkBucketHeader(value, place{page: where.page, bucket: string(key)})
		if err != nil {
			return nil, err
		}
		roots = append(roots, nested...)
	}
	return roots, nil
}

// checkBucketHeader checks a nested bucket's header. It returns the bucket's root
// page, or the root pages nested in its inline page when the root is 0.
func checkBucketHeader(value []byte, where place) ([]uint64, error) {
	if len(value) < boltBucketHeaderSize {
		return nil, damaged("bucket %q in page %d has a header of %d bytes, not %d",
			where.bucket, where.page, len(value), boltBucketHeaderSize)
	}
	if root := boltOrder.Uint64(value); root != 0 {
		return []uint64{root}, nil
	}
	inline := value[boltBucketHeaderSize:]
	if len(inline) < boltPageHeaderSize {
		return nil, damaged("bucket %q in page %d is inline but too short for a page "+
			"header", where.bucket, where.page)
	}
	flags := boltOrder.Uint16(inline[8:])
	if flags&boltLeafPage == 0 {
		return nil, damaged("%s has the page type %s, not leaf", where, pageType(flags))
	}
	return checkLeafElements(inline, boltOrder.Uint16(inline[10:]), where)
}

// slice returns data[offset:offset+size], or an error when that is outside data.
func slice(data []byte, offset, size uint64, where place, element int) ([]byte, error) {
	if offset > uint64(len(data)) || size > uint64(len(data))-offset {
		return nil, damaged("%s element %d points at bytes %d to %d, outside its %d bytes",
			where, element, offset, offset+size, len(data))
	}
	return data[offset : offset+size], nil
}

// checkKeyOrder requires keys to be non-empty and ascending, as bbolt's binary
// search of a page assumes.
func checkKeyOrder(previous, key []byte, where place, element int) error {
	if len(key) == 0 {
		return damaged("%s element %d has an empty key", where, element)
	}
	if previous != nil && bytes.Compare(previous, key) >= 0 {
		return damaged("%s element %d is out of key order", where, element)
	}
	return nil
}

// place names a page, or the inline page of a small bucket stored in a page, for
// an error. It is formatted only when an error needs it, because the check visits
// every page.
type place struct {
	page uint64
	// bucket is the name of the bucket whose inline page this is, or empty.
	bucket string
}

func (p place) String() string {
	if p.bucket == "" {
		return fmt.Sprintf("page %d", p.page)
	}
	return fmt.Sprintf("the inline page of bucket %q in page %d", p.bucket, p.page)
}

func pageType(flags uint16) string {
	switch {
	case flags&boltBranchPage != 0:
		return "branch"
	case flags&boltLeafPage != 0:
		return "leaf"
	case flags&boltMetaPage != 0:
		return "meta"
	case flags&boltFreelistPage != 0:
		return "freelist"
	}
	return fmt.Sprintf("unknown (%#02x)", flags)
}

func setBit(set []uint64, id uint64) { set[id/64] |= 1 << (id % 64) }

func hasBit(set []uint64, id uint64) bool { return set[id/64]&(1<<(id%64)) != 0 }
