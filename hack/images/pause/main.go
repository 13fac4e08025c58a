// The pod sandbox's one process: it holds the pod's namespaces and exits on SIGTERM or
// SIGINT, as Kubernetes' own pause image does, and reaps the zombies a shared PID namespace
// leaves it. Built static (CGO_ENABLED=0) so the image needs nothing but this file.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	children := make(chan os.Signal, 16)
	signal.Notify(children, syscall.SIGCHLD)
	for {
		select {
		case <-stop:
			return
		case <-children:
			for {
				pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
				if pid <= 0 || err != nil {
					break
				}
			}
		}
	}
}
