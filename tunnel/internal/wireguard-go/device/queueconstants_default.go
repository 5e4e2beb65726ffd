//go:build !android && !ios && !windows

/* SPDX-License-Identifier: MIT
 *
 * Copyright (C) 2017-2025 WireGuard LLC. All Rights Reserved.
 */

package device

import "golang.zx2c4.com/wireguard/conn"

const (
	QueueStagedSize    = conn.IdealBatchSize
	QueueOutboundSize  = 1024
	QueueInboundSize   = 1024
	QueueHandshakeSize = 1024
	MaxSegmentSize     = (1 << 16) - 1 // largest possible UDP datagram
)

// PreallocatedBuffersPerPool bounds each pool (message buffers, elements,
// containers) of a device created after it is set; 0 disables the bound and
// allows for infinite memory growth. A variable, as on iOS, so that an
// embedder can bound its memory (l2wg patch, as upstream PR #69 proposes).
var PreallocatedBuffersPerPool uint32 = 0
