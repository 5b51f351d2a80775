// Package rig is the load-test rig: it places calls against a voicegw
// gateway, measures them on the caller's clock and reports percentiles from
// HDR histograms against service-level objectives.
package rig
