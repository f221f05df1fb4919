describe('runtime', () => {
  it('runs on Node 24 (installed by npm from the node package, not the machine)', () => {
    expect(Number(process.versions.node.split('.')[0])).toBe(24);
  });
});
