// Package output writes the bundles of the node into a directory, for workloads
// that read trust bundles from files instead of the Workload API.
//
// The directory contains one PEM file per trust domain, named
// "<trust domain>.pem", with that trust domain's X.509 authorities. It also
// contains one SPIFFE bundle map, "bundles.json", with every trust domain's full
// SPIFFE bundle. SPIFFE Trust Domain and Bundle 5.1 defines the map as an object
// whose "trust_domains" member maps each trust domain name, without the
// "spiffe://" prefix, to its bundle. A trust domain without X.509 authorities has no PEM file, because a
// consumer that finds no file for a trust domain trusts none of its X509-SVIDs,
// which is what an empty bundle means (SPIFFE Trust Domain and Bundle 4.1.3).
//
// Every file is replaced atomically: a temporary file in the same directory is
// written, synced and renamed over the old one, so a reader sees either the
// complete old content or the complete new content. A file is written only when
// its content changes, so consumers that watch modification times reload only
// on real changes. The PEM file of a trust domain that is gone is removed.
//
// The files are public key material, so they get mode 0644 and a directory
// created by the writer gets mode 0755. The writer removes only files that it
// wrote itself: ManifestFile lists them, and it is updated before each new file
// is created, so a crash leaves no file of the writer unlisted. It also removes
// its own leftover temporary files, whose names start with ".bundlex-". Every
// other file is left alone, whatever its name.
//
// A Writer holds an exclusive lock on LockFile in the directory while it runs,
// so that two nodes given the same directory do not remove each other's files:
// the second one gets an error that names the directory.
package output
