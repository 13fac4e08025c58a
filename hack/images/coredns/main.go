// CoreDNS with only the plugins the node's Corefile uses. Leaving out `forward` (and every
// other plugin that talks to the outside) is part of the network containment: pods can
// resolve cluster names and nothing else.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/loop"
	_ "github.com/coredns/coredns/plugin/ready"
)

// The order plugins run in: the relative order of CoreDNS's own plugin.cfg.
var directives = []string{"ready", "health", "errors", "log", "cache", "kubernetes", "loop"}

func init() {
	dnsserver.Directives = directives
}

func main() {
	coremain.Run()
}
