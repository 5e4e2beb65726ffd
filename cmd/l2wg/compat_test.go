package main

import (
	"github.com/l2wg/l2wg/bridge/spanning"
	"github.com/l2wg/l2wg/cmd/l2wg/internal/control"
	"github.com/l2wg/l2wg/cmd/l2wg/internal/metrics"
	"github.com/l2wg/l2wg/cmd/l2wg/internal/wgsock"
)

// The end-to-end tests were written when the daemon lived in package main;
// these are the names they use, now in the daemon's packages.

type (
	showStatus  = control.Status
	showSTP     = control.STP
	showSTPPort = control.STPPort
	netnsID     = wgsock.Netns
)

var (
	parseMetrics = metrics.Parse
	metricValue  = metrics.Value
	uapiNames    = wgsock.Names
	uapiPath     = wgsock.Path
	privateGroup = spanning.PrivateGroup
)
