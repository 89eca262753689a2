module clusterledger/interop/tlog

// Go 1.19 is Debian bookworm's golang-go, which scripts/test installs where Go is missing.
go 1.19

require (
	github.com/transparency-dev/merkle v0.0.2
	golang.org/x/mod v0.17.0
)
