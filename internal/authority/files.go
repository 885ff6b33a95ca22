package authority

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

const (
	dirMode     = 0o700
	keyFileMode = 0o600
	// tempPrefix starts the name of every file that writeFileAtomic has not yet
	// renamed into place. OpenBuiltin removes such leftovers of a crash.
	tempPrefix = ".tmp-"
)

// prepareDir creates dir with mode 0700, or checks that an existing one is
// not accessible by group or others, because it contains private keys.
func prepareDir(dir string) error {
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return fmt.Errorf("authority: create key directory %s: %w", dir, err)
	}
	info, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("authority: inspect key directory %s: %w", dir, err)
	}
	if !info.IsDir() {
		return fmt.Errorf("authority: key directory %s is not a directory; set Dir to a directory",
			dir)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("authority: key directory %s has mode %04o, but it contains private "+
			"keys; run chmod 700 %s", dir, perm, dir)
	}
	return nil
}

// writeFileAtomic replaces dir/name with data so that a crash at any moment,
// kill -9 included, leaves either the old or the new content: it writes a
// temporary file, syncs it, renames it over the target and syncs the directory.
func writeFileAtomic(dir, name string, data []byte, perm os.FileMode) (err error) {
	tmp, err := os.CreateTemp(dir, tempPrefix+name+"-*")
	if err != nil {
		return fmt.Errorf("authority: create temporary file for %s: %w", name, err)
	}
	defer func() {
		if err != nil {
			_ = os.Remove(tmp.Name())
		}
	}()
	if err = tmp.Chmod(perm); err == nil {
		if _, err = tmp.Write(data); err == nil {
			err = tmp.Sync()
		}
	}
	if closeErr := tmp.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		return fmt.Errorf("authority: write %s: %w", tmp.Name(), err)
	}
	target := filepath.Join(dir, name)
	if err = os.Rename(tmp.Name(), target); err != nil {
		return fmt.Errorf("authority: rename %s to %s: %w", tmp.Name(), target, err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("authority: open directory %s to sync it: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("authority: sync directory %s: %w", dir, err)
	}
	return nil
}

func writeKeyFile(dir, name string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("authority: encode private key for %s: %w", name, err)
	}
	block := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	return writeFileAtomic(dir, name, block, keyFileMode)
}

// readKeyFile loads a PKCS#8 EC private key. Errors name the file but never
// include its content.
func readKeyFile(dir, name string) (*ecdsa.PrivateKey, error) {
	path := filepath.Join(dir, name)
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("authority: read private key %s: %w; restore the file from "+
			"backup or move the state file away to start with new keys", path, err)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("authority: private key %s has mode %04o; run chmod 600 %s",
			path, perm, path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("authority: read private key %s: %w", path, err)
	}

	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("authority: private key %s is not a PEM \"PRIVATE KEY\" block; "+
			"restore the file from backup", path)
	}

	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("authority: parse private key %s: %w; restore the file from backup",
			path, err)
	}
	key, ok := parsed.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("authority: private key %s is a %T, not an EC key; restore the "+
			"file from backup", path, parsed)
	}
	return key, nil
}

// removeUnreferenced deletes key files that the state no longer lists and
// temporary files left by a crash. A crash between writing a new key file and
// writing the state that lists it leaves such a key behind.
func removeUnreferenced(dir string, referenced map[string]bool) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("authority: list key directory %s: %w", dir, err)
	}
	var removed []string
	for _, e := range entries {
		name := e.Name()
		ours := isKeyFileName(name) || strings.HasPrefix(name, tempPrefix)
		if !e.Type().IsRegular() || !ours || referenced[name] {
			continue
		}
		err := os.Remove(filepath.Join(dir, name))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return removed, fmt.Errorf("authority: remove unused file %s: %w",
				filepath.Join(dir, name), err)
		}
		removed = append(removed, name)
	}
	return removed, nil
}

func isKeyFileName(name string) bool {
	return strings.HasSuffix(name, keyFileSuffix) &&
		(strings.HasPrefix(name, caKeyPrefix) || strings.HasPrefix(name, jwtKeyPrefix))
}

// checkNoKeyFiles rejects a directory without a state file that still
// contains key files. Either a first start was killed between writing the
// keys and the state, or the state file was lost. Creating new keys would
// delete the old ones, so the operator decides.
func checkNoKeyFiles(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("authority: list key directory %s: %w", dir, err)
	}
	var keys []string
	for _, e := range entries {
		if isKeyFileName(e.Name()) {
			keys = append(keys, e.Name())
		}
	}
	if len(keys) == 0 {
		return nil
	}
	return fmt.Errorf("authority: key directory %s contains key files %v but no %s; restore "+
		"%s from backup, or delete the key files to start the trust domain with new keys",
		dir, keys, StateFileName, StateFileName)
}
