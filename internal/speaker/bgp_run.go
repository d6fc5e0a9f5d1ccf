package speaker

import (
	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	toolscache "k8s.io/client-go/tools/cache"

	"github.com/herald-lb/herald/internal/announce/bfd"
	"github.com/herald-lb/herald/internal/announce/bgp"
	"github.com/herald-lb/herald/internal/kube"
	"github.com/herald-lb/herald/internal/metrics"
	"github.com/herald-lb/herald/internal/servicereq"
)

// setupBGP builds the BGP speaker, its loop and the loop's runner and its status writer,
// and subscribes the loop to the informers. The caller runs the speaker
// with the process's context, not the loop's, so that SIGTERM closes the
// sessions at once. The GoBGP server starts with the first peer; without
// BGPPeers it costs nothing.
func setupBGP(api kube.Client, c *kube.Cache, rec kube.EventRecorder, inf *informerSet, opts Options, bfdMgr *bfd.Manager,
	reg prometheus.Registerer, log logr.Logger) (*bgp.Speaker, *BGPLoop, *runner, *BGPStatusWriter, error) {
	// At the shutdown the sessions with graceful restart stay open for
	// the process's exit to close (the routers keep the routes while the
	// speaker restarts), unless this node is on its way out.
	closeAll := func() bool {
		obj, ok, err := inf.nodes.Store().GetByKey(opts.NodeName)
		n, isNode := obj.(*corev1.Node)
		if err != nil || !ok || !isNode {
			return true
		}
		own := nodeFrom(n, opts.IgnoreExcludeLB)
		return !KeepsRoutesOnShutdown(&own)
	}
	spk := bgp.New(bgp.Options{Log: log.WithName("bgp"), ListenPort: opts.BGPListenPort, CloseAll: closeAll})
	// The status writer reads its objects from the cache and writes them
	// to the API server.
	status := NewBGPStatusWriter(cachedClient{Reader: c, Writer: api}, rec, opts.Namespace, opts.NodeName,
		spk, metrics.NewBGP(reg), log.WithName("bgp-status"))
	status.BFD = bfdMgr
	status.Owner = inf.nodeOwner(opts.NodeName)
	loop := &BGPLoop{
		IgnoreExcludeLB: opts.IgnoreExcludeLB,
		BFD:             bfdMgr,
		Client:          c,
		Namespace:       opts.Namespace,
		NodeName:        opts.NodeName,
		Class:           servicereq.Class{Name: opts.LBClass, Only: opts.LBClassOnly},
		Speaker:         spk,
		Status:          status,
		Log:             log.WithName("bgp"),
		ServiceStore:    inf.services.Store(),
	}
	r := newRunner(loop, log.WithName("bgp"))
	// A change is a pass at once (a route waits for nothing) unless
	// passes are running back to back (BatchDelay); changes during a pass
	// make one more. Only this node's Node matters: every node announces
	// on its own.
	toLoop := onEvent(func() { r.kickAfter(loop.BatchDelay()) })
	if err := inf.addLoopHandler(toLoop, inf.pools, inf.bgpAdvs, inf.peers, inf.communities, inf.bfdProfiles, inf.configMap,
		inf.secrets, // BGPPeer passwordSecrets
	); err != nil {
		return nil, nil, nil, nil, err
	}
	thisNode := func(obj any) bool {
		if t, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
			obj = t.Obj
		}
		n, ok := obj.(*corev1.Node)
		return ok && n.Name == opts.NodeName
	}
	if err := inf.nodes.AddHandler(toolscache.FilteringResourceEventHandler{FilterFunc: thisNode, Handler: toLoop}); err != nil {
		return nil, nil, nil, nil, err
	}
	return spk, loop, r, status, nil
}

// bgpConfig is the informers BGPLoop.Prestart reads.
func (s *informerSet) bgpConfig() []*kube.Informer {
	return []*kube.Informer{s.pools, s.l2Advs, s.bgpAdvs, s.peers, s.communities, s.bfdProfiles, s.configMap, s.nodes, s.secrets}
}

// cachedClient reads from a cache and writes to the API server.
type cachedClient struct {
	kube.Reader
	kube.Writer
}
