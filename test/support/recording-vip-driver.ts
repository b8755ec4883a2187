import type { HeldAddress, VipDriver } from '../../src/agent/vip-driver.js';

/**
 * An agent's VIP driver that keeps addresses in memory and records every change: for tests of
 * the manager <-> agent path (auth, TLS) that need no network namespace.
 */
export class RecordingVipDriver implements VipDriver {
  readonly held = new Map<string, HeldAddress[]>();
  readonly calls: string[] = [];
  constructor(readonly iface = 'eth0') {
    this.held.set(iface, []);
  }
  async list(iface: string): Promise<HeldAddress[]> {
    const addresses = this.held.get(iface);
    if (!addresses) throw new Error(`Device "${iface}" does not exist.`);
    return addresses.map((address) => ({ ...address }));
  }
  async add(ip: string, prefix: number, iface: string): Promise<void> {
    this.calls.push(`add ${ip}/${prefix} ${iface}`);
    const addresses = this.held.get(iface) ?? [];
    if (addresses.some((address) => address.ip === ip))
      throw new Error('RTNETLINK answers: File exists');
    this.held.set(iface, [...addresses, { ip, prefix }]);
  }
  async remove(ip: string, _prefix: number, iface: string): Promise<void> {
    this.calls.push(`del ${ip} ${iface}`);
    this.held.set(
      iface,
      (this.held.get(iface) ?? []).filter((address) => address.ip !== ip),
    );
  }
  async announce(): Promise<string> {
    return 'recorded';
  }
  ips(): string[] {
    return (this.held.get(this.iface) ?? []).map((address) => address.ip);
  }
}
