// Package dr is the disaster-recovery control plane: the global metadata
// on embedded etcd (dr/meta) and the controller (dr/controller) that
// fences ordered topics by epoch, fails over, switches over and fails back.
//
// The metadata service is in dr/meta (embedded members in dr/meta/member);
// the controller is in dr/controller.
package dr
