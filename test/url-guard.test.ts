import assert from 'node:assert/strict'
import {describe, test} from 'node:test'

import {checkTarget, classifyAddress, guardedLookup, isAllowedAddress} from '../src/core/webhooks/url-guard.js'

describe('url guard', () => {
  test('address classes', () => {
    const cases: Array<[string, ReturnType<typeof classifyAddress>]> = [
      ['127.0.0.1', 'loopback'],
      ['127.255.1.2', 'loopback'],
      ['::1', 'loopback'],
      ['10.0.0.1', 'private'],
      ['10.255.255.255', 'private'],
      ['172.16.0.1', 'private'],
      ['172.31.255.254', 'private'],
      ['172.32.0.1', null],
      ['172.15.255.255', null],
      ['192.168.1.1', 'private'],
      ['192.169.0.1', null],
      ['fc00::1', 'private'],
      ['fd12:3456:789a::1', 'private'],
      ['169.254.169.254', 'link-local'],
      ['169.254.0.1', 'link-local'],
      ['fe80::1', 'link-local'],
      ['febf::1', 'link-local'],
      ['0.0.0.0', 'unspecified'],
      ['::', 'unspecified'],
      ['100.64.0.1', 'shared'],
      ['100.127.255.255', 'shared'],
      ['100.128.0.1', null],
      ['100.63.255.255', null],
      ['224.0.0.1', 'multicast'],
      ['ff02::1', 'multicast'],
      ['255.255.255.255', 'reserved'],
      ['8.8.8.8', null],
      ['1.1.1.1', null],
      ['93.184.216.34', null],
      ['2606:4700:4700::1111', null],
    ]
    for (const [address, expected] of cases) assert.equal(classifyAddress(address), expected, address)
  })

  test(
    'every special-purpose range is refused, from its first address to its last; the neighbours outside ' +
      'are public',
    () => {
      // [first, last, class, the public address just below, the public address just above]
      const ranges: Array<[string, string, ReturnType<typeof classifyAddress>, string | null, string | null]> = [
        ['0.0.0.0', '0.255.255.255', 'unspecified', null, '1.0.0.0'],
        ['10.0.0.0', '10.255.255.255', 'private', '9.255.255.255', '11.0.0.0'],
        ['100.64.0.0', '100.127.255.255', 'shared', '100.63.255.255', '100.128.0.0'],
        ['127.0.0.0', '127.255.255.255', 'loopback', '126.255.255.255', '128.0.0.0'],
        ['169.254.0.0', '169.254.255.255', 'link-local', '169.253.255.255', '169.255.0.0'],
        ['172.16.0.0', '172.31.255.255', 'private', '172.15.255.255', '172.32.0.0'],
        ['192.0.0.0', '192.0.0.255', 'reserved', '191.255.255.255', '192.0.1.0'],
        ['192.0.2.0', '192.0.2.255', 'documentation', '192.0.1.255', '192.0.3.0'],
        ['192.88.99.0', '192.88.99.255', 'reserved', '192.88.98.255', '192.88.100.0'],
        ['192.168.0.0', '192.168.255.255', 'private', '192.167.255.255', '192.169.0.0'],
        ['198.18.0.0', '198.19.255.255', 'benchmarking', '198.17.255.255', '198.20.0.0'],
        ['198.51.100.0', '198.51.100.255', 'documentation', '198.51.99.255', '198.51.101.0'],
        ['203.0.113.0', '203.0.113.255', 'documentation', '203.0.112.255', '203.0.114.0'],
        ['224.0.0.0', '239.255.255.255', 'multicast', '223.255.255.255', null],
        ['240.0.0.0', '255.255.255.255', 'reserved', null, null],
        ['::', '::', 'unspecified', null, null],
        ['::1', '::1', 'loopback', null, null],
        [
          '64:ff9b:1::',
          '64:ff9b:1:ffff:ffff:ffff:ffff:ffff',
          'private',
          '64:ff9b:0:ffff:ffff:ffff:ffff:ffff',
          '64:ff9b:2::',
        ],
        ['100::', '100::ffff:ffff:ffff:ffff', 'reserved', 'ff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', null],
        ['100:0:0:1::', '100:0:0:1:ffff:ffff:ffff:ffff', 'reserved', null, '100:0:0:2::'],
        [
          '2001::',
          '2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff',
          'reserved',
          '2000:ffff:ffff:ffff:ffff:ffff:ffff:ffff',
          '2001:200::',
        ],
        [
          '2001:db8::',
          '2001:db8:ffff:ffff:ffff:ffff:ffff:ffff',
          'documentation',
          '2001:db7:ffff:ffff:ffff:ffff:ffff:ffff',
          '2001:db9::',
        ],
        [
          '3fff::',
          '3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff',
          'documentation',
          '3ffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff',
          '3fff:1000::',
        ],
        [
          '5f00::',
          '5f00:ffff:ffff:ffff:ffff:ffff:ffff:ffff',
          'reserved',
          '5eff:ffff:ffff:ffff:ffff:ffff:ffff:ffff',
          '5f01::',
        ],
        [
          'fc00::',
          'fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff',
          'private',
          'fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff',
          null,
        ],
        [
          'fe80::',
          'febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff',
          'link-local',
          'fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff',
          null,
        ],
        ['fec0::', 'feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', 'private', null, null],
        ['ff00::', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', 'multicast', null, null],
      ]
      for (const [first, last, kind, below, above] of ranges) {
        assert.equal(classifyAddress(first), kind, first)
        assert.equal(classifyAddress(last), kind, last)
        if (below) assert.equal(classifyAddress(below), null, `${below}, just below ${first}`)
        if (above) assert.equal(classifyAddress(above), null, `${above}, just above ${last}`)
      }
      // Teredo: the whole prefix, whatever IPv4 address (obfuscated) it carries.
      assert.equal(classifyAddress('2001:0:4136:e378:8000:63bf:3fff:fdd2'), 'reserved')
      assert.equal(classifyAddress('2001::ffff:ffff'), 'reserved')
      for (const address of [
        '8.8.8.8',
        '1.1.1.1',
        '93.184.216.34',
        '198.17.0.1',
        '223.255.255.254',
        '2606:4700:4700::1111',
        '2a00:1450:4001::1',
        '2001:4860:4860::8888',
      ]) {
        assert.equal(classifyAddress(address), null, `${address} is public`)
        assert.ok(isAllowedAddress(address), address)
      }
    },
  )

  test('IPv4-mapped and other IPv6 forms that carry an IPv4 address are judged by it', () => {
    assert.equal(classifyAddress('::ffff:127.0.0.1'), 'loopback')
    assert.equal(classifyAddress('::ffff:7f00:1'), 'loopback')
    assert.equal(classifyAddress('::FFFF:169.254.169.254'), 'link-local')
    assert.equal(classifyAddress('::ffff:a9fe:a9fe'), 'link-local')
    assert.equal(classifyAddress('::ffff:10.1.2.3'), 'private')
    assert.equal(classifyAddress('::ffff:100.64.1.1'), 'shared')
    assert.equal(classifyAddress('::ffff:0.0.0.0'), 'unspecified')
    assert.equal(classifyAddress('::ffff:8.8.8.8'), null)
    assert.equal(classifyAddress('::127.0.0.1'), 'loopback')
    assert.equal(classifyAddress('::ffff:0:192.168.0.1'), 'private')
    assert.equal(classifyAddress('64:ff9b::10.0.0.1'), 'private')
    assert.equal(classifyAddress('64:ff9b::8.8.8.8'), null)
    assert.equal(classifyAddress('2002:a9fe:a9fe::1'), 'link-local')
    assert.equal(classifyAddress('2002:c612:1::1'), 'benchmarking', '6to4 of 198.18.0.1')
    assert.equal(classifyAddress('2002:808:808::1'), null, '6to4 of 8.8.8.8')
    assert.equal(classifyAddress('::ffff:198.19.255.255'), 'benchmarking')
    assert.equal(classifyAddress('::ffff:192.0.0.8'), 'reserved')
    assert.equal(classifyAddress('::ffff:240.0.0.1'), 'reserved')
    assert.equal(classifyAddress('64:ff9b::c612:1'), 'benchmarking', 'NAT64 of 198.18.0.1')
    assert.equal(classifyAddress('64:ff9b::127.0.0.1'), 'loopback')
    assert.equal(classifyAddress('::ffff:0:7f00:1'), 'loopback', 'IPv4-translated 127.0.0.1')
    assert.equal(classifyAddress('[::1]'), 'loopback')
    assert.equal(classifyAddress('fe80::1%eth0'), 'link-local')
  })

  test('allowPrivate lets private classes through but never documentation, multicast or reserved', () => {
    assert.ok(!isAllowedAddress('127.0.0.1'))
    assert.ok(isAllowedAddress('127.0.0.1', true))
    assert.ok(isAllowedAddress('169.254.169.254', true))
    assert.ok(!isAllowedAddress('198.18.0.1'))
    assert.ok(isAllowedAddress('198.18.0.1', true))
    assert.ok(!isAllowedAddress('64:ff9b:1::1'))
    assert.ok(isAllowedAddress('64:ff9b:1::1', true))
    for (const address of [
      '224.0.0.1',
      '192.0.0.8',
      '240.0.0.1',
      '255.255.255.255',
      '2001:0:4136:e378:8000:63bf:3fff:fdd2',
      '192.0.2.1',
      '2001:db8::1',
      '::ffff:240.0.0.1',
    ]) {
      assert.ok(!isAllowedAddress(address, true), address)
    }
    assert.ok(isAllowedAddress('8.8.8.8'))
  })

  test('checkTarget refuses IP literals with the operator-facing message', async () => {
    await assert.rejects(checkTarget('http://127.0.0.1:8080/hook?token=secret'), (error: any) => {
      assert.equal(error.name, 'UserError')
      assert.equal(error.code, 'TARGET_NOT_ALLOWED')
      assert.equal(error.message, 'webhook url http://127.0.0.1:8080/hook resolves to 127.0.0.1, a loopback address')
      assert.equal(
        error.fix,
        'replay only to public endpoints, or allow private targets with --allow-private-targets (or ' +
          'REPLAYCTL_ALLOW_PRIVATE_TARGETS=1) for local testing',
      )
      assert.ok(!error.line.includes('secret'), 'the query is not shown')
      return true
    })
    await assert.rejects(
      checkTarget('https://169.254.169.254/latest/meta-data'),
      /169\.254\.169\.254, a link-local address/,
    )
    await assert.rejects(checkTarget('http://[::ffff:127.0.0.1]/'), /a loopback address/)
    await assert.rejects(checkTarget('http://[fd00::1]/'), /a private address/)
    await assert.rejects(checkTarget('http://100.100.100.200/'), /a shared \(CGNAT\) address/)
    await assert.rejects(checkTarget('http://0.0.0.0/'), /an unspecified address/)
    await assert.rejects(checkTarget('http://198.18.0.1/'), /198\.18\.0\.1, a benchmarking address/)
    await assert.rejects(checkTarget('http://[2001::1]/', {allowPrivate: true}), /a reserved address/)
    // WHATWG URL parsing normalises odd IPv4 spellings before the check
    await assert.rejects(checkTarget('http://2130706433/'), /resolves to 127\.0\.0\.1, a loopback address/)
    await assert.rejects(checkTarget('http://0x7f.1/'), /resolves to 127\.0\.0\.1/)
  })

  test('checkTarget: scheme and syntax', async () => {
    await assert.rejects(checkTarget('ftp://example.com/x'), {
      code: 'TARGET_NOT_ALLOWED',
      message: 'webhook url ftp://example.com/x uses ftp, not http or https',
    })
    await assert.rejects(checkTarget('file:///etc/passwd'), {code: 'TARGET_NOT_ALLOWED'})
    await assert.rejects(checkTarget('not a url'), {code: 'INVALID_ARGUMENT'})
  })

  test('checkTarget resolves host names: localhost is loopback', async () => {
    await assert.rejects(checkTarget('http://localhost:9/'), {
      code: 'TARGET_NOT_ALLOWED',
      message: /^webhook url http:\/\/localhost:9\/ resolves to (127\.0\.0\.1|::1), a loopback address$/,
    })
    const allowed = await checkTarget('http://localhost:9/', {allowPrivate: true})
    assert.ok(allowed.addresses.length >= 1)
    const literal = await checkTarget('https://8.8.8.8/hook', {})
    assert.deepEqual(literal.addresses, ['8.8.8.8'])
  })

  test('guardedLookup fails a connection to a refused address', async () => {
    const refuse = guardedLookup(false)
    const error = await new Promise<any>((resolve) =>
      (refuse as any)('localhost', {all: true}, (err: unknown) => resolve(err)),
    )
    assert.equal(error?.name, 'TargetRefusedError')
    const allow = guardedLookup(true)
    const list = await new Promise<any>((resolve, reject) =>
      (allow as any)('localhost', {all: true}, (err: unknown, res: unknown) => (err ? reject(err) : resolve(res))),
    )
    assert.ok(Array.isArray(list) && list.length >= 1)
    const single = await new Promise<any[]>((resolve, reject) =>
      (allow as any)('localhost', {}, (err: unknown, address: string, family: number) =>
        err ? reject(err) : resolve([address, family]),
      ),
    )
    assert.equal(typeof single[0], 'string')
    assert.ok(single[1] === 4 || single[1] === 6)
  })
})
