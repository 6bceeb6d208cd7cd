import { resolve } from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import type { FaultProxy } from './fault-proxy.ts';
import type { ReceiverKind } from './receiver.ts';

/**
 * `holdfast receiver`: an ambulance service or GP practice that is not ours, for the demo and
 * drills (see receiver.ts). It needs no node (and takes no node's lock): it only listens.
 */
export function registerReceiverCommands(program: Command): void {
  program
    .command('receiver')
    .description(
      'run a FHIR messaging endpoint that is not ours (an ambulance service, GP practice, ED or pharmacy) for demos and drills; it holds each message once by its id in --store',
    )
    .option('--port <n>', 'port to listen on', port, 8090)
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option(
      '--kind <kind>',
      'ambulance, gp, service (an ED, UTC or treatment centre: referrals, bookable slots, POST /control/next-answer and /control/did-not-attend) or pharmacy (prescriptions: checks the prescription id, takes cancellations, POST /control/dispensed)',
      kind,
      'ambulance' as ReceiverKind,
    )
    .option(
      '--reject-when <rule>',
      'a service refuses referrals: "always:REASON" refuses every one with REASON',
    )
    .option('--slots <n>', 'a service offers this many free half-hour slots ahead', port, 16)
    .option('--name <name>', 'its name in answers', 'North Ambulance Service')
    .option('--store <file>', 'append-only NDJSON file of what it received (kept across restarts)')
    .option(
      '--mailbox <dir>',
      'also take messages from a mailbox in the MESH manner: DIR is the mailbox folder (<root>/<mailbox>); it collects complete messages from DIR/out and writes delivery reports and response messages into DIR/in',
    )
    .option(
      '--faults <seed>',
      'put a fault-injecting proxy in front (drops, delays, duplicates, 500s, lost answers), seeded; it listens on --port, the receiver on a free port it prints',
    )
    .action(
      async (opts: {
        port: number;
        host: string;
        kind: ReceiverKind;
        name: string;
        store?: string;
        faults?: string;
        mailbox?: string;
        rejectWhen?: string;
        slots: number;
      }) => {
        if (!opts.store)
          throw new InvalidArgumentError('give the file to keep messages in with --store FILE');
        const rule = opts.rejectWhen === undefined ? null : /^always:(.+)$/.exec(opts.rejectWhen);
        if (opts.rejectWhen !== undefined && !rule)
          throw new InvalidArgumentError('--reject-when must be always:REASON');
        // Loaded here, not by every `holdfast` command (see cli.ts).
        const { FhirReceiver } = await import('./receiver.ts');
        const receiver = new FhirReceiver({
          kind: opts.kind,
          name: opts.name,
          storeFile: opts.store,
          ...(rule ? { rejectReason: rule[1]!.trim() } : {}),
          slots: { count: opts.slots },
        });
        const seed = opts.faults === undefined ? null : Number(opts.faults);
        if (seed !== null && !Number.isInteger(seed))
          throw new InvalidArgumentError('--faults must be a whole number (the seed)');
        // With faults, the proxy takes --port and the receiver itself a free port (printed below).
        const receiverPort = seed === null ? opts.port : 0;
        const url = await receiver.start(receiverPort, opts.host);
        let front = url;
        let proxy: FaultProxy | null = null;
        if (seed !== null) {
          const { FaultProxy } = await import('./fault-proxy.ts');
          proxy = new FaultProxy(url, { seed });
          front = await proxy.start(opts.port, opts.host);
        }
        console.log(
          `${opts.name} (${opts.kind} receiver) listening on ${front}${proxy ? ` through a faulty network (seed ${seed})` : ''}; ${receiver.count} messages held in ${opts.store}`,
        );
        console.log(`  POST message Bundles to ${front}/messages   what it holds: ${url}/received`);
        const pickup = opts.mailbox
          ? new (await import('./mailbox.ts')).MailboxPickup(receiver, resolve(opts.mailbox))
          : null;
        if (pickup) {
          await pickup.start();
          console.log(`  collecting from mailbox ${pickup.dir}/out, answering into ${pickup.dir}/in`);
        }
        const stop = () => {
          void Promise.all([proxy?.stop(), pickup?.stop()])
            .then(() => receiver.stop())
            .then(() => process.exit(0));
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      },
    );
}

function port(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n > 65535)
    throw new InvalidArgumentError('--port must be a whole number from 0 to 65535');
  return n;
}

function kind(value: string): ReceiverKind {
  if (value !== 'ambulance' && value !== 'gp' && value !== 'service' && value !== 'pharmacy')
    throw new InvalidArgumentError('--kind must be ambulance, gp, service or pharmacy');
  return value;
}
