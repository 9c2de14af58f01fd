import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InvalidArgumentError } from '../../util/errors.ts';
import { ChannelModel, DEVICE_PROFILES, deviceProfile, scaleBandwidth } from './devices.ts';

test('profiles carry the ANCHORS §6 figures (slow end of each range)', () => {
  assert.equal(DEVICE_PROFILES['optane-appdirect'].readBytesPerNs, 37.6);
  assert.equal(DEVICE_PROFILES['optane-appdirect'].writeBytesPerNs, 12.5);
  assert.equal(DEVICE_PROFILES['nvme-gen4'].readBytesPerNs, 7);
  assert.equal(DEVICE_PROFILES['nvme-gen5'].readBytesPerNs, 13);
  assert.equal(DEVICE_PROFILES['nvme-gen4'].readLatencyNs, 80_000);
  assert.equal(DEVICE_PROFILES.dram.readBytesPerNs, 105);
  assert.ok(DEVICE_PROFILES.cxl.readLatencyNs > DEVICE_PROFILES.dram.readLatencyNs);
  assert.throws(() => deviceProfile('tape'), InvalidArgumentError);
  assert.equal(scaleBandwidth(DEVICE_PROFILES['nvme-gen4'], 2).readBytesPerNs, 14);
});

test('a channel streams FIFO at full bandwidth and adds latency per transfer', () => {
  const model = new ChannelModel({ ...DEVICE_PROFILES['nvme-gen4'], readBytesPerNs: 1, readLatencyNs: 100 });
  const a = model.schedule('read', 1000, 0);
  assert.deepEqual(a, { startNs: 0, channelFreeNs: 1000, endNs: 1100 });
  const b = model.schedule('read', 500, 200);
  assert.deepEqual(b, { startNs: 1000, channelFreeNs: 1500, endNs: 1600 }, 'queues behind the first');
  const c = model.schedule('read', 10, 5000);
  assert.equal(c.startNs, 5000, 'an idle channel starts at issue');
  assert.equal(model.busyNs, 1510);
});

test('two channels split bandwidth and run transfers side by side', () => {
  const model = new ChannelModel({
    ...DEVICE_PROFILES.dram,
    readBytesPerNs: 2,
    readLatencyNs: 0,
    channels: 2,
  });
  const a = model.schedule('read', 1000, 0);
  const b = model.schedule('read', 1000, 0);
  assert.equal(a.endNs, 1000);
  assert.equal(b.startNs, 0);
  assert.equal(b.endNs, 1000);
});
