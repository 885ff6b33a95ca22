package deps

import (
	_ "github.com/go-jose/go-jose/v4"
	_ "github.com/hashicorp/go-hclog"
	_ "github.com/hashicorp/memberlist"
	_ "github.com/hashicorp/raft"
	_ "github.com/hashicorp/raft-boltdb/v2"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/prometheus/client_golang/prometheus/promhttp"
	_ "github.com/spf13/cobra"
	_ "github.com/spf13/viper"
	_ "github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	_ "github.com/spiffe/go-spiffe/v2/federation"
	_ "github.com/spiffe/go-spiffe/v2/proto/spiffe/workload"
	_ "github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
	_ "github.com/spiffe/go-spiffe/v2/workloadapi"
	_ "github.com/stretchr/testify/require"
	_ "google.golang.org/grpc"
)
