/** Message wording for a physio / rehab clinic's inbox. Deterministic given the Rng. */
import type { Rng } from './prng.ts';

const DAYS = ['Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
const TIMES = ['8:30', '9:15', '10:30', '11:45', '1:00pm', '2:30pm', '4:15pm', '5:45pm'];

const INCOMING_EN = [
  'Hi, can I book a physio session for {day}?',
  'Hey! Do you have anything available {day} arvo?',
  'Hi there, my lower back is killing me after surfing 😩 any spots this week?',
  'Can I move my appointment to {day}? Something came up',
  'How much is an initial consult?',
  'Do you bulk bill or is it private health only?',
  "I'm running 10 min late, sorry!",
  'Thanks so much, see you {day} 🙏',
  'Is there parking near the clinic?',
  'Do I need a referral from my GP?',
  'Can you send me the exercises we did today?',
  'My knee is still swollen, should I ice it?',
  'Yes that works',
  'ok 👍',
  'Perfect, thank you!',
  "Can I claim this on my health fund? I'm with Bupa",
  'Could you resend the invoice please? Needs "Surf Rehab" on it for my insurer',
  'Sorry who is this?',
];
const INCOMING_ID = [
  'Halo, saya mau booking untuk besok bisa?',
  'Berapa harga fisioterapi?',
  'Terima kasih banyak 🙏',
  'Bisa jam {time}?',
  'Maaf saya telat 10 menit',
];
const INCOMING_ES = [
  'Hola! ¿Tienen disponibilidad el {day}?',
  '¿Cuánto cuesta la consulta?',
  'Gracias, nos vemos mañana',
  'Perfecto 👌',
];

const AGENT = [
  'Hi {first}! Sure, we have {time} or {time2} on {day}. Which suits?',
  "No worries {first}, I've moved you to {day} at {time}.",
  'An initial consult is $120 and follow-ups are $95. Happy to book you in!',
  "We're not able to bulk bill, but you can claim on most private health funds on the spot with HICAPS.",
  'See you then! Please bring any scans or referral letters.',
  "I've attached the exercise sheet from today's session.",
  'Ice for 15 minutes every couple of hours and keep it elevated. If it gets worse please call us.',
  'No referral needed unless you are claiming through Medicare/EPC.',
  'Invoice attached 👍',
  "Thanks for letting us know, we'll see you soon.",
];
const BOT = [
  'Thanks for your message! 👋 A member of our team will reply shortly. Reply 1 for bookings, 2 for prices, 3 for directions.',
  'Our clinic hours are Mon–Fri 7am–7pm and Sat 8am–1pm.',
  'You can book online any time here: https://clinic.example/book',
  "We're closed right now but we'll get back to you first thing in the morning.",
  'Got it! Connecting you with our front desk team…',
];
const NOTES = [
  'Existing patient, check Cliniko notes re: left knee (ACL recon 2023).',
  'Asked about pricing twice, send fee schedule.',
  "Possible duplicate with the other WhatsApp number, don't merge yet.",
  '@front-desk please call to confirm the new time.',
  'Paid deposit by bank transfer, reconcile Monday.',
  'Prefers Bahasa Indonesia.',
];
const TEMPLATES = [
  'Hi {first}, this is a reminder of your appointment on {day} at {time}. Reply YES to confirm or call us to reschedule.',
  'Welcome to {clinic}! We typically reply within a few hours.',
  'Hi {first}, how are you feeling after your last session? Book your follow-up here: https://clinic.example/book',
];

export type Lang = 'en' | 'id' | 'es';

function fill(t: string, rng: Rng, vars: Record<string, string>): string {
  return t
    .replaceAll('{day}', rng.pick(DAYS))
    .replaceAll('{time2}', rng.pick(TIMES))
    .replaceAll('{time}', rng.pick(TIMES))
    .replace(/\{(\w+)\}/g, (_, k: string) => vars[k] ?? '');
}

export function incomingText(rng: Rng, lang: Lang): string {
  const pool =
    lang === 'id' && rng.chance(0.7) ? INCOMING_ID : lang === 'es' && rng.chance(0.7) ? INCOMING_ES : INCOMING_EN;
  return fill(rng.pick(pool), rng, {});
}

export function agentText(rng: Rng, first: string): string {
  return fill(rng.pick(AGENT), rng, { first });
}

export function botText(rng: Rng): string {
  return rng.pick(BOT);
}

export function noteText(rng: Rng): string {
  return rng.pick(NOTES);
}

export function templateText(rng: Rng, first: string, clinic: string): string {
  return fill(rng.pick(TEMPLATES), rng, { first, clinic });
}

export function editedText(rng: Rng, original: string): string {
  return rng.weighted([
    [`${original} (edited)`, 1],
    [original.replace(/\b(\d{1,2}):(\d{2})/, '$1:45'), 1],
    [`${original} 🙂`, 1],
  ]);
}
