package raft

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
)

// The BoltDB file format that go.etcd.io/bbolt v1.3.5 writes (format version 2),
// in the machine's byte order. checkBoltFile reads it with bounds-checked reads
// instead of through bbolt. bbolt maps the file into memory and follows page
// references without checks, so on a damaged file it panics or faults, and a
// fault ends the process unless SetPanicOnFault is on. Its own Tx.Check walks
// the pages in a goroutine of its own, where even a panic ends the process.
const (
	boltMagic   = 0xED0CDAED
	boltVersion = 2

	boltPageHeaderSize    = 16 // id uint64, flags uint16, count uint16, overflow uint32
	boltMetaSize          = 64 // magic, version, page size, flags, root bucket, freelist, pgid, txid, checksum
	boltMetaChecksumAt    = 56 // the checksum is FNV-1a 64 over the meta bytes before it
	boltBranchElementSize = 16 // pos uint32, ksize uint32, pgid uint64
	boltLeafElementSize   = 16 // flags uint32, pos uint32, ksize uint32, vsize uint32
	boltBucketHeaderSize  = 16 // root pgid uint64, sequence uint64

	boltBranchPage   = 0x01
	boltLeafPage     = 0x02
	boltMetaPage     = 0x04
	boltFreelistPage = 0x10
	// boltBucketLeaf marks a leaf element whose value is a nested bucket.
	boltBucketLeaf = 0x01
	// boltNoFreelist is the freelist page ID of a file written with
	// NoFreelistSync, which bbolt rebuilds by scanning.
	boltNoFreelist = ^uint64(0)
	// boltFreelistCountOverflow in a freelist page's count means that the first
	// element holds the real count.
	boltFreelistCountOverflow = 0xFFFF

	// minBoltPageSize and maxBoltPageSize bound the page size that a meta page may
	// declare. bbolt uses the operating system's page size, 4 KiB to 64 KiB on the
	// platforms Go supports.
	minBoltPageSize = 1 << 9
	maxBoltPageSize = 1 << 16
)

var boltOrder = binary.NativeEndian

// boltDamage is an error of checkBoltFile that describes damage, as opposed to
// an error reading the file.
type boltDamage struct{ reason string }

func (d *boltDamage) Error() string { return d.reason }

func damaged(format string, args ...any) error {
	return &boltDamage{reason: fmt.Sprintf(format, args...)}
}

// boltMeta is the part of a meta page that the check uses.
type boltMeta struct {
	pageSize uint32
	root     uint64
	freelist uint64
	// pageCount is the high-water mark: pages 0 to pageCount-1 are in use or free.
	pageCount uint64
	txid      uint64
}

// boltCheck is the state of one checkBoltFile run.
type boltCheck struct {
	file     *os.File
	size     int64
	meta     boltMeta
	pageSize int
	// reachable and free are bit sets over page IDs below meta.pageCount.
	reachable []uint64
	free      []uint64
	// buffer holds the page that is being checked, reused to spare allocations.
	buffer []byte
	// warnings describe states that bbolt opens without error but that an
	// operator should hear about, such as a damaged meta page.
	warnings []string
}

// checkBoltFile checks the structure of the BoltDB file at path, as bbolt's
// Tx.Check does, and more: it also checks that the file is long enough for every
// page, that each page records its own ID and that keys are sorted. It returns a
// *boltDamage error for damage, and the warnings for states that bbolt recovers
// from by itself. It reads the file and never writes it. It does not detect
// changed bytes inside keys or values, which bbolt does not checksum.
func checkBoltFile(path string) (warnings []string, err error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	info, err := file.Stat()
	if err != nil {
		return nil, err
	}
	c := &boltCheck{file: file, size: info.Size()}
	if c.size == 0 {
		return nil, damaged("the file is empty (0 bytes)")
	}
	if err := c.readMeta(); err != nil {
		return c.warnings, err
	}
	if err := c.checkPages(); err != nil {
		return c.warnings, err
	}
	return c.warnings, nil
}

// readMeta picks the meta page that bbolt would use: the valid one with the
// higher transaction ID. Like bbolt, it takes the page size from meta page 0 and
// falls back to the operating system's page size when that page is invalid.
func (c *boltCheck) readMeta() error {
	meta0, err0 := c.readMetaPage(0, os.Getpagesize())
	pageSize := os.Getpagesize()
	if err0 == nil {
		pageSize = int(meta0.pageSize)
	} else if errors.Is(err0, io.ErrUnexpectedEOF) || errors.Is(err0, io.EOF) {
		return damaged("the file has %d bytes, too short for a meta page; it is not a "+
			"BoltDB file or was cut short", c.size)
	}
	meta1, err1 := c.readMetaPage(1, pageSize)
	switch {
	case err0 != nil && err1 != nil:
		return damaged("both meta pages are invalid (page 0: %v; page 1: %v), so this is "+
			"not a BoltDB file or its first pages were overwritten", err0, err1)
	case err0 != nil:
		c.meta = meta1
		c.warnings = append(c.warnings, fmt.Sprintf("meta page 0 is invalid (%v); "+
			"bbolt uses meta page 1, transaction %d", err0, meta1.txid))
	case err1 != nil:
		c.meta = meta0
		c.warnings = append(c.warnings, fmt.Sprintf("meta page 1 is invalid (%v); "+
			"bbolt uses meta page 0, transaction %d", err1, meta0.txid))
	case meta1.txid > meta0.txid:
		c.meta = meta1
	default:
		c.meta = meta0
	}
	c.pageSize = int(c.meta.pageSize)
	return c.checkMeta()
}

// readMetaPage reads and validates meta page id, at id*pageSize.
func (c *boltCheck) readMetaPage(id uint64, pageSize int) (boltMeta, error) {
	buf := make([]byte, boltPageHeaderSize+boltMetaSize)
	if _, err := c.file.ReadAt(buf, int64(id)*int64(pageSize)); err != nil {
		return boltMeta{}, err
	}
	raw := buf[boltPageHeaderSize:]
	switch {
	case boltOrder.Uint32(raw[0:]) != boltMagic:
		return boltMeta{}, errors.New("wrong magic number")
	case boltOrder.Uint32(raw[4:]) != boltVersion:
		return boltMeta{}, fmt.Errorf("format version %d, not %d",
			boltOrder.Uint32(raw[4:]), boltVersion)
	}
	// bbolt accepts a zero checksum, which files of early versions carry.
	stored := boltOrder.Uint64(raw[boltMetaChecksumAt:])
	sum := fnv.New64a()
	sum.Write(raw[:boltMetaChecksumAt])
	if stored != 0 && stored != sum.Sum64() {
		return boltMeta{}, errors.New("checksum mismatch")
	}
	return boltMeta{
		pageSize:  boltOrder.Uint32(raw[8:]),
		root:      boltOrder.Uint64(raw[16:]),
		freelist:  boltOrder.Uint64(raw[32:]),
		pageCount: boltOrder.Uint64(raw[40:]),
		txid:      boltOrder.Uint64(raw[48:]),
	}, nil
}

// checkMeta checks the chosen meta page against the file.
func (c *boltCheck) checkMeta() error {
	m := c.meta
	if m.pageSize < minBoltPageSize || m.pageSize > maxBoltPageSize {
		return damaged("the meta page declares a page size of %d bytes, outside %d to %d",
			m.pageSize, minBoltPageSize, maxBoltPageSize)
	}
	if m.pageCount < 3 {
		return damaged("the meta page declares %d pages, fewer than the 3 of an empty "+
			"database", m.pageCount)
	}
	pagesInFile := uint64(c.size) / uint64(c.pageSize)
	if m.pageCount > pagesInFile {
		return damaged("the file has %d bytes but its meta page (transaction %d) uses %d "+
			"pages of %d bytes, %d bytes; the file was cut short", c.size, m.txid,
			m.pageCount, m.pageSize, m.pageCount*uint64(m.pageSize))
	}
	if m.root < 2 || m.root >= m.pageCount {
		return damaged("the root bucket is on page %d, outside pages 2 to %d", m.root,
			m.pageCount-1)
	}
	if m.freelist != boltNoFreelist && (m.freelist < 2 || m.freelist >= m.pageCount) {
		return damaged("the freelist is on page %d, outside pages 2 to %d", m.freelist,
			m.pageCount-1)
	}
	return nil
}
