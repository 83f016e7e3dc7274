"""Generate the flagship customer-support sample, ``pipelines/data/support_sample.jsonl``.

The text comes from templates in this file (the project's own, Apache-2.0), with known
problems injected so that every curation stage has something to find: exact and near
duplicates, paraphrases, canned answers, quality defects, imbalanced categories and a few
public benchmark questions. The sidecar ``support_sample.manifest.json`` records how many
rows of each kind were written and on which lines, so tests can check a run against it.

Run from the repository root (deterministic for a given ``--seed``)::

    .venv/bin/python scripts/make_support_sample.py

Benchmark items, read at generation time from ``--benchmarks`` (default ``../shared/data``);
indices are 0-based data rows (JSONL line / CSV row after the header):

- gsm8k/test.jsonl 0 ("Janet's ducks lay 16 eggs ..."): verbatim
- gsm8k/test.jsonl 1 ("A robe takes 2 bolts ..."): lowercased, punctuation changed
- gsm8k/test.jsonl 2 ("Josh decides to try flipping a house ..."): verbatim inside a support message
- mmlu/test/high_school_geography_test.csv 2 (10 words): question and choices, verbatim
- mmlu/test/computer_security_test.csv 14 (9 words): question and choices, lowercased
- mmlu/test/marketing_test.csv 10 (6 words): question only, verbatim
- truthfulqa/TruthfulQA.csv 0 (9 words): verbatim
- truthfulqa/TruthfulQA.csv 8 (7 words): lowercased, punctuation stripped
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parent.parent

# ----------------------------------------------------------------------------- slot values
PRODUCTS = [
    "Aurora 2 wireless earbuds", "TrailMate 40L backpack", "Kestrel electric kettle",
    "Nimbus memory-foam pillow", "Vela standing desk", "Orbit 27-inch monitor", "Fjord rain jacket",
    "Pico espresso machine", "Summit hiking boots", "Lumen desk lamp", "Tide cast-iron skillet",
    "Cobalt mechanical keyboard", "Harbor linen duvet set", "Quill fountain pen set",
    "Breeze tower fan", "Sprout kids' bike", "Ember candle trio", "Glide robot vacuum",
    "Marlow leather wallet", "Pebble watch strap", "Nova air fryer", "Willow ceramic planter",
    "Drift yoga mat", "Sable wool scarf", "Echo bluetooth speaker", "Ridge thermal flask",
    "Cedar bookshelf", "Lark baby monitor", "Polar down vest", "Atlas desk globe",
]
CITIES = [
    "Austin", "Leeds", "Toronto", "Melbourne", "Dublin", "Denver", "Glasgow", "Portland",
    "Auckland", "Vancouver", "Bristol", "Chicago", "Manchester", "Seattle", "Cork", "Perth",
    "Ottawa", "Boston", "Cardiff", "Phoenix", "Brighton", "Calgary", "Nashville", "Edinburgh",
]
NAMES = [
    "Maria", "James", "Aisha", "Tom", "Priya", "Lukas", "Chen", "Sofia", "Daniel", "Fatima",
    "Owen", "Grace", "Mateo", "Hannah", "Ravi", "Elena", "Kwame", "Julia", "Noah", "Yuki",
]
SURNAMES = ["Garcia", "Smith", "Khan", "Novak", "Okafor", "Brown", "Rossi", "Tanaka", "Walsh",
            "Patel", "Jensen", "Silva", "Murphy", "Nguyen", "Fischer", "Lopez"]
AGENTS = ["Priya", "Marco", "Dana", "Felix", "Ruth", "Omar", "Lena", "Theo"]
CARRIERS = ["UPS", "DHL", "FedEx", "USPS", "Royal Mail", "Canada Post", "DPD"]
PAYMENTS = ["Visa card", "Mastercard", "PayPal account", "Apple Pay", "Amex card", "debit card"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December"]

# ----------------------------------------------------------------------------- intents
# ask: customer messages; "A || B" marks B as a paraphrase of A (source of paraphrase rows).
# steps: one entry per numbered step, variants separated by " | "; "-" skips the step.
INTENTS: dict[str, dict] = {
    "track_order": {"category": "ORDER", "n": 230, "ask": [
        "Where is my order {order}? I ordered the {product} on {date} and it still hasn't arrived. || I placed order {order} for the {product} on {date} and it has not been delivered yet. Where is it?",
        "Can you tell me the status of order {order}? || What's the current status of my order {order}?",
        "hi, any update on my {product}? order number is {order}",
        "I've been waiting since {date} for my {product}. Where is it?? Order {order}.",
        "How do I track my package? It's order {order} going to {city}. || How can I follow the parcel for order {order}? It's being shipped to {city}.",
        "The tracking page for {order} hasn't changed in days. Is my {product} lost? || Tracking for order {order} has been stuck for days; has my {product} been lost?",
        "order {order} status pls",
        "Could you check when order {order} will be delivered to {city}? I need the {product} by the weekend.",
        "I never got a shipping confirmation for my {product} (order {order}). Has it shipped yet?",
        "My order {order} has said 'processing' since {date}. What is going on?"],
        "ack": ["I checked order {order} for the {product}, and I can help you follow it.",
                "Thanks for the order number; here is how to see where your {product} is right now.",
                "Order {order} is in our system, so let's find out where the parcel is."],
        "steps": [
            "Sign in at larkspur.example and open **Account > Orders**. | Log in to your Larkspur account and go to the Orders page. | Open the Larkspur app and tap Orders at the bottom of the screen.",
            "Select order {order} to see its current status and the carrier ({carrier}). | Click order {order}; the carrier ({carrier}) and tracking number are listed under Shipment. | Choose order {order} from the list to see the shipping details.",
            "Click **Track package** to open the {carrier} tracking page. | Use the tracking link to follow the parcel on the {carrier} site; updates can lag by up to 24 hours. | Follow the tracking number link, where the carrier usually posts a new scan every day.",
            "If there has been no movement for 5 business days, reply to this message and we will open a trace with {carrier}. | If the status hasn't changed by {date2}, let us know and we'll ship a replacement or refund you. | -"]},
    "cancel_order": {"category": "ORDER", "n": 200, "ask": [
        "I need to cancel order {order}, I ordered the wrong size. || Please cancel order {order}; I picked the wrong size.",
        "Please cancel my order {order} for the {product}. I found it cheaper elsewhere. || I'd like to cancel order {order} (the {product}) because I found a better price somewhere else.",
        "How can I cancel an order I placed on {date}?",
        "cancel {order}",
        "I accidentally ordered the {product} twice. Can you cancel one of them? The order number is {order}.",
        "Is it too late to cancel order {order}? I don't think it has shipped yet. || Can order {order} still be cancelled? I believe it hasn't been sent out.",
        "I want to cancel my purchase of the {product} right now. Why is there no cancel button?!",
        "Hello, could you please cancel order {order}? I no longer need the {product}."],
        "ack": ["I can help you cancel order {order}.",
                "No problem: orders can be cancelled as long as they haven't been handed to the carrier.",
                "Sorry the {product} didn't work out this time; let's get order {order} cancelled."],
        "steps": [
            "Go to **Account > Orders** and open order {order}. | Sign in and find order {order} under Your Orders. | In the Larkspur app, tap Orders and select {order}.",
            "Click **Cancel order** and pick a reason from the list. | Choose Cancel items, select the {product}, and confirm. | Press the Cancel button next to the item; if you don't see it, the order is already being packed.",
            "You'll get a cancellation email within a few minutes. | Watch for a confirmation email; the order status changes to Cancelled. | Once it's done, the order page shows Cancelled and nothing else is needed from you.",
            "The refund of {amount} goes back to your original payment method within 3-5 business days. | Any charge is reversed to your {payment} within 5 business days. | -"]},
    "change_order": {"category": "ORDER", "n": 150, "ask": [
        "Can I change the size of the {product} in order {order}? || Is it possible to pick a different size for the {product} on order {order}?",
        "I'd like to add another item to order {order} before it ships.",
        "I picked the wrong color for the {product}. Can I still change it? Order {order}. || I chose the wrong colour for my {product} (order {order}); is it too late to switch?",
        "how do i edit my order",
        "Is it possible to swap the {product} in order {order} for a different model?",
        "I need to update the quantity on order {order}, I only want one {product}, not two.",
        "Please change my order {order}, I made a mistake when I placed it on {date}."],
        "ack": ["Orders can be edited for about an hour after they're placed, and I'm happy to walk you through it.",
                "Let's see whether order {order} can still be changed.",
                "Good news: as long as order {order} hasn't started packing, you can make changes yourself."],
        "steps": [
            "Open **Account > Orders** and select order {order}. | Sign in on larkspur.example and go to Your Orders. | In the app, open Orders and tap {order}.",
            "Click **Edit order**; you can change the size, color or quantity of the {product} there. | Use Modify items to update the {product} and save your changes. | Select Change item and choose the option you want.",
            "Check the new total: if it's higher, the difference is charged to your {payment}. | Review the updated summary before confirming; price differences are settled automatically. | Confirm the change and you'll receive an updated order confirmation by email.",
            "If the Edit button is greyed out, the order is already packing, so cancel it or return the item once it arrives. | -"]},
    "request_refund": {"category": "REFUND", "n": 200, "ask": [
        "I want a refund for the {product}. It arrived broken. || The {product} was broken when it arrived and I'd like my money back.",
        "The {product} I received on {date} doesn't work. How do I get my money back?",
        "Refund for order {order} please, the item is not as described.",
        "I returned the {product} and want a full refund of {amount}. || I've sent the {product} back; please refund the full {amount}.",
        "This {product} is garbage. I want my {amount} back NOW.",
        "How do I request a refund? I changed my mind about the {product}. || What's the process for getting a refund? I've decided I don't want the {product}.",
        "hi can i get refund for order {order}",
        "The {product} came with a missing part. I'd rather have a refund than a replacement.",
        "Can I get a partial refund? The {product} has a scratch but I'd like to keep it."],
        "ack": ["I'm sorry the {product} didn't meet your expectations; I'll help you start a refund.",
                "You can request a refund within 30 days of delivery, so order {order} qualifies.",
                "Thanks for letting us know. Here's how to get the refund for order {order} started."],
        "steps": [
            "Go to **Account > Orders**, open order {order} and click **Return or refund**. | Sign in, find order {order}, and choose Request a refund. | In the app, open order {order} and tap Refund.",
            "Select the {product}, pick a reason and add a photo if it's damaged. | Choose the reason that fits best; for damaged items a photo speeds things up. | Tell us what went wrong in a sentence or two and attach a picture if you can.",
            "Print the prepaid return label and drop the parcel at any {carrier} point. | We'll email a free return label; pack the item and hand it to {carrier}. | If the item is damaged you may not need to send it back, and the confirmation email will say so.",
            "The refund of {amount} goes to your {payment} within 5-7 business days after we receive the item. | Once the return is scanned, your refund is processed and usually shows up within a week. | -"]},
    "refund_status": {"category": "REFUND", "n": 140, "ask": [
        "I returned the {product} on {date} but I still haven't received my refund. || I sent the {product} back on {date} and the refund still hasn't come through.",
        "Where is my refund for order {order}?",
        "It's been two weeks and no refund for {amount}. What's going on?",
        "When will I see the money for my returned {product} back on my {payment}? || How long until the refund for the {product} I returned shows up on my {payment}?",
        "refund status {order}?",
        "You said my refund was approved, but there's nothing on my card. Order {order}.",
        "How long do refunds usually take? I sent back the {product} on {date}."],
        "ack": ["I understand waiting for a refund is frustrating; let me explain where it stands.",
                "Thanks for your patience. Refunds go through a couple of steps before they reach your account.",
                "I looked into order {order}, and here is how you can follow the refund."],
        "steps": [
            "Open **Account > Orders** and select order {order}; the Refund section shows the current status. | Sign in and check the Returns tab, where each refund shows Received, Processed or Paid. | Look at the refund status on the page for order {order}.",
            "Once it says Processed, the money has left us; banks take 3-5 business days to post it. | A Processed refund of {amount} goes back to your {payment}; allow a few business days. | If it shows Received but not Processed, we're still inspecting the {product}, which takes up to 2 days.",
            "Check your statement for a credit from LARKSPUR RETAIL rather than a reversal of the original charge. | The credit may appear under a different description, such as LARKSPUR*REFUND. | -",
            "If nothing arrives by {date2}, reply here with a screenshot of your statement and we'll trace it with the bank. | Still nothing after 10 business days? Contact us and we'll send you the bank reference number. | -"]},
    "change_shipping_address": {"category": "SHIPPING", "n": 120, "ask": [
        "I need to change the delivery address for order {order}. I'm moving to {city}. || Please send order {order} to my new address in {city}; I'm moving.",
        "Can I ship my {product} to a different address? I put my old one by mistake.",
        "wrong address on order {order}, how to fix",
        "Please update the shipping address on {order} to my office in {city}. || Could you redirect order {order} to my workplace in {city}?",
        "I typed the wrong street number for my {product} delivery. Can you correct it before it ships?",
        "Is it possible to redirect a parcel that's already with {carrier}?",
        "My order {order} is going to the wrong city!! I live in {city} now."],
        "ack": ["You can change the address yourself until the order is handed to the carrier.",
                "Let's get order {order} headed to the right place.",
                "Thanks for catching that early; an address fix is usually quick."],
        "steps": [
            "Open **Account > Orders** and select order {order}. | Sign in and go to Your Orders, then pick {order}. | In the app, tap Orders and choose {order}.",
            "Click **Change delivery address** and enter the new address in {city}. | Choose Edit address and type the correct street, number and postcode. | Select Update shipping details and save the new address.",
            "If the parcel has already shipped, use the {carrier} link on the order page to request a redirect. | Already shipped? {carrier} can usually redirect it for free from their tracking page. | -",
            "You'll receive an email confirming the new address. | The new address also appears on your order confirmation, so check it there. | Make sure your phone number is up to date, as the driver may call."]},
    "delivery_options": {"category": "SHIPPING", "n": 110, "ask": [
        "Do you offer express shipping to {city}? || Can I get next-day delivery to {city}?",
        "How much is delivery for the {product}?",
        "Can I pick up my order in a store in {city} instead of having it delivered?",
        "What shipping options do you have? I need the {product} before {date2}. || Which delivery methods can I choose from? The {product} has to arrive before {date2}.",
        "do you ship internationally",
        "Is there free shipping on orders over a certain amount?",
        "Can you deliver on a Saturday? I'm not home during the week."],
        "ack": ["We have a few delivery options, and the checkout page shows the exact ones for your address.",
                "Happy to explain our shipping options for {city}.",
                "Delivery speed and cost depend on the item and your address; here's how to see them."],
        "steps": [
            "Add the {product} to your basket and go to checkout. | Start checkout with the {product} in your basket. | Open your basket and click Checkout.",
            "Enter your address in {city} to see Standard, Express and Next-day prices. | After you enter a {city} address, the available options and prices appear. | Pick Standard (3-5 days), Express (1-2 days) or Collect in store where it's offered.",
            "Orders over $50 ship free with Standard delivery. | Standard delivery is free above $50; Express costs a flat $9.95. | -",
            "For weekend delivery, choose a Saturday slot with {carrier} at checkout where it's available. | We currently ship to 24 countries; the full list is on larkspur.example/shipping. | -"]},
    "reset_password": {"category": "ACCOUNT", "n": 170, "ask": [
        "I forgot my password and can't log in. || I can't sign in because I don't remember my password.",
        "The password reset email never arrives. I've tried three times.",
        "how do i reset my password",
        "I'm locked out of my account after too many attempts. Help!",
        "Can you reset the password for {email}? || Please help me reset the password on the account {email}.",
        "Your site keeps saying my password is wrong but I KNOW it's right.",
        "I want to change my password, I think someone else has it.",
        "I'm trying to check my order from {city} but the login won't accept my password."],
        "ack": ["No worries, resetting your password only takes a couple of minutes.",
                "For your security we can't see or set passwords, but you can reset it yourself.",
                "Sorry you're locked out; let's get you back into your account."],
        "steps": [
            "Go to larkspur.example/login and click **Forgot password?**. | Open the sign-in page and choose Forgot password. | In the app, tap Sign in, then Trouble signing in?",
            "Enter the email address on your account ({email}) and submit. | Type {email} and we'll send a reset link that works for 30 minutes. | Enter your email; if it's registered, a link arrives within 5 minutes.",
            "Check your spam or promotions folder if the email doesn't arrive. | Open the link and choose a new password of at least 10 characters. | Follow the link to set a new password, then sign in again.",
            "After 5 failed attempts the account locks for 15 minutes, so wait before trying again. | If you think someone else knows your password, turn on two-step verification under **Account > Security**. | -"]},
    "delete_account": {"category": "ACCOUNT", "n": 100, "ask": [
        "Please delete my account and all my data. || I want my account removed along with all of my personal data.",
        "How do I close my Larkspur account?",
        "I want to remove the account registered to {email}.",
        "delete account pls",
        "I don't shop with you anymore. Can you erase my personal information under GDPR? || I've stopped using your store; please erase my personal data as GDPR allows.",
        "How can I permanently delete my profile and saved cards?"],
        "ack": ["I'm sorry to see you go, and I can explain how to close your account.",
                "You can delete your account and data yourself at any time.",
                "We take data requests seriously; here's how to remove your account for good."],
        "steps": [
            "Sign in and open **Account > Privacy**. | Log in at larkspur.example and go to Privacy settings. | In the app, open Profile and tap Privacy.",
            "Click **Delete my account** and confirm with your password. | Choose Close account, then enter your password to confirm. | Select Delete account and data and confirm.",
            "We'll send a confirmation to {email}; deletion completes within 30 days. | Saved cards and addresses are removed immediately, the rest within 30 days. | -",
            "Open orders must be delivered or cancelled before the account can be closed. | Order records we must keep for tax purposes are retained but no longer linked to a profile. | -"]},
    "payment_failed": {"category": "PAYMENT", "n": 140, "ask": [
        "My card keeps getting declined at checkout. || Checkout rejects my card every time I try to pay.",
        "I tried to pay with my {payment} and got an error.",
        "Payment failed but I was still charged {amount}!",
        "why does checkout say 'payment could not be processed'",
        "I can't complete my order for the {product}, the payment page just spins. || The payment step for the {product} never finishes loading.",
        "My {payment} was charged twice for order {order}.",
        "The {payment} payment failed three times. Is your site broken?"],
        "ack": ["Sorry for the trouble at checkout; most payment errors have a quick fix.",
                "Let's figure out why the payment for the {product} didn't go through.",
                "A failed payment can leave a temporary hold, but you're only charged once an order is confirmed."],
        "steps": [
            "Check that the billing address matches the one your bank has on file. | Make sure the card details and billing postcode are entered exactly as on your statement. | Confirm the card hasn't expired and has enough available credit.",
            "Try again in a private browser window, or switch to the Larkspur app. | Clear your browser cache or try another browser, since extensions can block the payment page. | Approve the payment in your banking app if it asks for 3-D Secure verification.",
            "If it still fails, pay with another method such as PayPal or Apple Pay. | Your bank may block online payments it doesn't recognise, so a quick call to them often solves it. | -",
            "A declined attempt can show as a pending hold of {amount}; it drops off within 3-5 business days. | If you were charged twice for order {order}, reply with a screenshot and we'll refund the duplicate. | -"]},
    "get_invoice": {"category": "INVOICE", "n": 85, "ask": [
        "I need an invoice for order {order} for my company. || Can I get a company invoice for order {order}?",
        "Can you send me a VAT invoice for the {product}?",
        "Where can I download the receipt for my purchase on {date}?",
        "invoice for {order}?",
        "My invoice has the wrong company name. Can you reissue it? || The company name on my invoice is incorrect; could you send a corrected one?",
        "I need an invoice with my business address in {city} for the {product}."],
        "ack": ["Invoices are available for every order once it has shipped.",
                "You can download the invoice for order {order} yourself.",
                "Happy to help with the invoice for your {product}."],
        "steps": [
            "Go to **Account > Orders** and open order {order}. | Sign in and select order {order} in Your Orders. | In the app, open Orders and tap {order}.",
            "Click **Download invoice** to get a PDF with VAT shown separately. | Choose Invoice to download a PDF copy. | Use the Invoice link at the top of the order page.",
            "To add a company name or VAT number, click **Edit billing details** before downloading. | Need your business address in {city} on it? Update the billing details first and the PDF is regenerated. | -",
            "If the order hasn't shipped yet, the invoice appears as soon as it does. | For a reissued invoice, reply with the correct details and we'll send it within 2 business days. | -"]},
}

# ----------------------------------------------------------------------------- shared phrasing
OPENERS = {
    "calm": ["Thanks for reaching out!", "Thanks for contacting Larkspur Support.", "Hello, and thank you for getting in touch.",
             "Thanks for your message.", "Happy to help with this.", "Thank you for contacting us.", ""],
    "angry": ["I'm really sorry about the trouble, and I understand why you're upset.",
              "I apologise for the frustration this has caused.", "I'm sorry for the inconvenience; let's get this sorted out."],
}
INTROS = ["Here's what to do:", "Please follow these steps:", "It only takes a minute:", "Here's how:", ""]
CLOSINGS = [
    "Is there anything else I can help you with?", "Let me know if you have any other questions.",
    "If anything is unclear, just reply to this message and we'll take it from there.",
    "We're here 7 days a week if you need anything else.", "Have a great day!",
    "Hope this helps, and thanks for shopping with Larkspur.", "Feel free to reach out if the steps above don't work for you.",
]
SIGNATURES = ["", "", "— {agent}, Larkspur Support", "Best,\n{agent}"]
TONE_SUFFIX = {"polite": ["Thank you!", "Thanks in advance.", "I appreciate your help."],
               "angry": ["This is ridiculous.", "I'm really disappointed.", "Third time I'm asking!", "Please sort this out today."]}
EMAIL_GREETINGS = ["Hello,", "Hi,", "Dear Larkspur team,", "Hi there,", "Good morning,"]
EMAIL_SIGNOFFS = ["Thanks,\n{name}", "Best regards,\n{name} {surname}", "Cheers,\n{name}", "Kind regards,\n{name}"]
PHONE_FILLERS = ["Yes hi, ", "Hi, um, ", "Hello, so ", "Yeah, hi. "]
SYNONYMS = {"order": "purchase", "please": "kindly", "check": "verify", "usually": "normally",
            "click": "press", "select": "choose", "email": "e-mail", "within": "in", "help": "assist",
            "quick": "fast", "new": "fresh", "minutes": "mins"}
NEAR_GREETINGS = ["Hi!", "Hello team,", "Hey there,", "Good afternoon,"]
NEAR_SIGNOFFS = ["Thanks!", "Thank you so much.", "Cheers.", "Many thanks!"]

# Responses shared verbatim by different questions (a real support pattern: macros).
CANNED = [
    ("For your security we can't change account details over chat or email. Please sign in at larkspur.example/account "
     "and use the Security section, or call +1 800 555 0142 (Mon-Fri, 8am-8pm) so we can verify your identity first.",
     [("Can you change the email on my account to {email}?", "reset_password"),
      ("Please delete the account registered to {email} for me, I can't log in.", "delete_account"),
      ("Which card is saved on my account? I need the last four digits.", "payment_failed"),
      ("Can you reset my password and send it to me here?", "reset_password"),
      ("Please update the phone number on my profile to a new one.", "delete_account")]),
    ("We're handling higher than usual order volumes, so shipments may take 2-3 extra business days. Your order is safe "
     "and will ship as soon as possible; you'll get a tracking email the moment it leaves our warehouse. Thank you for your patience!",
     [("Why hasn't my {product} shipped yet?", "track_order"), ("Can you speed up delivery of order {order}?", "delivery_options"),
      ("It's been 4 days and order {order} is still not dispatched.", "track_order"),
      ("Will my {product} arrive before {date2}?", "delivery_options"), ("Is my order {order} delayed?", "track_order")]),
    ("Our refund policy: items can be returned within 30 days of delivery in their original condition. Refunds go to the "
     "original payment method within 5-7 business days after we receive the return. You can start a return any time from Account > Orders.",
     [("What is your return policy?", "request_refund"), ("Can I return the {product} after three weeks?", "request_refund"),
      ("How long does a refund take once you get my return?", "refund_status"),
      ("If I cancel order {order}, when do I get my money back?", "cancel_order"),
      ("Do I get a refund on my {payment} or store credit?", "refund_status")]),
]

# ----------------------------------------------------------------------------- quality defects
SHORT_ANSWERS = ["ok", "Yes.", "Done.", "Sure!", "No.", "Thanks", "k", "Will do.", "Checked.", "See above."]
EMPTY_ANSWERS = ["", " ", "\n", "   \n  ", "\t"]
REFUSALS = (["As an AI language model, I cannot", "As an AI language model, I am unable to", "I'm sorry, but as an AI I can't",
             "As an AI assistant, I do not have the ability to"],
            ["access your order information or personal account details.", "issue refunds or change orders.",
             "see real-time shipping data, so I can't tell you where your package is.", "help with payment information."],
            ["Please contact the company's customer service team.", "You may want to reach out to the retailer directly.",
             "I recommend checking the official website.", ""])
PLACEHOLDER_SLOTS = {"order": "{{Order Number}}", "amount": "<placeholder>", "email": "[EMAIL]", "date2": "{{Delivery Date}}",
                     "agent": "[NAME]", "city": "{{City}}"}
PLACEHOLDER_TAILS = ["You can also call us at {{Customer Support Phone Number}}.", "Best regards, [NAME]",
                     "More details are on {{Website URL}}.", "Your case number is <placeholder>."]

# Other-language rows: (intent, asks, response parts: openers, steps, closings).
FOREIGN = [
    ("track_order", ["Hola, ¿dónde está mi pedido {order}? Lo hice hace dos semanas y no ha llegado.",
                     "Buenas, necesito saber cuándo llega el pedido {order} a {city}."],
     (["¡Gracias por escribirnos!", "Hola, con gusto te ayudo.", "Lamentamos la demora."],
      ["Inicia sesión y abre **Cuenta > Pedidos**. | Entra en tu cuenta de Larkspur y ve a Pedidos.",
       "Selecciona el pedido {order} para ver el estado y la empresa de transporte ({carrier}). | Abre el pedido {order}; el número de seguimiento aparece en Envío.",
       "Si no hay movimiento en 5 días hábiles, respóndenos y abriremos una investigación con {carrier}. | Si no llega antes del {date2}, te enviamos otro o te devolvemos el dinero."],
      ["¿Hay algo más en lo que pueda ayudarte?", "Un saludo del equipo de Larkspur.", "Quedamos a tu disposición."])),
    ("cancel_order", ["Quiero cancelar mi pedido {order}, me equivoqué de talla.", "¿Puedo cancelar el pedido {order} del {product}?"],
     (["Claro, te ayudo a cancelarlo.", "Sin problema.", "Gracias por avisarnos a tiempo."],
      ["Ve a **Cuenta > Pedidos** y abre el pedido {order}. | En la app, toca Pedidos y elige {order}.",
       "Pulsa **Cancelar pedido** y elige un motivo. | Selecciona el {product} y confirma la cancelación.",
       "El reembolso de {amount} llegará a tu método de pago en 3-5 días hábiles. | Recibirás un correo de confirmación en unos minutos."],
      ["¡Que tengas un buen día!", "Si necesitas algo más, escríbenos.", "Saludos cordiales."])),
    ("request_refund", ["Hallo, ich möchte eine Rückerstattung für {product}, es ist kaputt angekommen.",
                        "Wie bekomme ich mein Geld für die Bestellung {order} zurück?"],
     (["Das tut uns leid!", "Danke für Ihre Nachricht.", "Gerne helfen wir Ihnen weiter."],
      ["Melden Sie sich an und öffnen Sie **Konto > Bestellungen**. | Öffnen Sie in der App die Bestellung {order}.",
       "Klicken Sie auf **Rücksendung oder Erstattung** und wählen Sie einen Grund. | Wählen Sie den Artikel aus und laden Sie ein Foto des Schadens hoch.",
       "Die Erstattung von {amount} erfolgt innerhalb von 5-7 Werktagen. | Sie erhalten ein kostenloses Rücksendeetikett für {carrier} per E-Mail."],
      ["Haben Sie noch weitere Fragen?", "Mit freundlichen Grüßen, Ihr Larkspur-Team.", "Einen schönen Tag noch!"])),
    ("payment_failed", ["Meine Zahlung mit {payment} wurde abgelehnt. Was kann ich tun?",
                        "Warum funktioniert die Zahlung für {product} nicht?"],
     (["Entschuldigen Sie die Unannehmlichkeiten.", "Danke, dass Sie uns kontaktieren.", "Das lässt sich meist schnell lösen."],
      ["Prüfen Sie, ob die Rechnungsadresse mit der Ihrer Bank übereinstimmt. | Kontrollieren Sie Kartennummer, Ablaufdatum und Postleitzahl.",
       "Versuchen Sie es in einem privaten Browserfenster oder in der App erneut. | Bestätigen Sie die Zahlung in Ihrer Banking-App (3-D Secure).",
       "Falls es weiterhin nicht klappt, zahlen Sie mit PayPal oder Apple Pay. | Eine abgelehnte Zahlung kann als Vormerkung von {amount} erscheinen und verschwindet nach 3-5 Werktagen."],
      ["Bei Fragen sind wir gerne für Sie da.", "Viele Grüße aus dem Support-Team.", "Wir wünschen Ihnen einen schönen Tag."])),
]

# ----------------------------------------------------------------------------- rows and text
# Quality defects per row count; the other injected kinds are fractions of the final file.
QUALITY_COUNTS = {"empty": 20, "short": 20, "placeholder": 28, "refusal": 16, "echo": 16,
                  "truncated": 20, "foreign": 12, "repeated_lines": 12}
DUP_COUNTS = {"exact_dup": 120, "near_dup": 195, "paraphrase": 72}
BASE_MAX_JACCARD = 0.5  # any two independent rows of one intent stay below this (word 5-grams)
NEAR_MIN_JACCARD = 0.8  # every near duplicate stays at least this close to its source


@dataclass(eq=False)
class Row:
    """One generated conversation plus how it was made (the bookkeeping never reaches the file)."""

    instruction: str
    response: str
    intent: str
    category: str
    channel: str
    kind: str = "base"
    source: Row | None = None
    slots: dict[str, str] = field(default_factory=dict)
    tone: str = "calm"
    ask: tuple[int, int] = (0, 0)  # (ask template index, side of "A || B")
    choices: dict[str, int] = field(default_factory=dict)
    note: str = ""

    def record(self) -> dict[str, str]:
        return {"instruction": self.instruction, "response": self.response, "category": self.category,
                "intent": self.intent, "channel": self.channel}


def normalise(text: str) -> str:
    """Lowercase, drop everything but letters/digits, fold whitespace (the loose comparison)."""
    return " ".join(re.sub(r"[\W_]+", " ", text.lower()).split())


def shingles(text: str, n: int = 5) -> set[str]:
    words = normalise(text).split()
    return {" ".join(words[i:i + n]) for i in range(max(1, len(words) - n + 1))}


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def conversation(row: Row) -> str:
    return f"{row.instruction}\n{row.response}"


def make_slots(rng: random.Random) -> dict[str, str]:
    """Draw one customer's details: order number, product, dates, city, amounts, names."""
    name, surname = rng.choice(NAMES), rng.choice(SURNAMES)
    order = rng.choice([f"#{rng.randint(100000, 999999)}", f"LK-{rng.randint(10000, 99999)}",
                        f"{rng.randint(10, 99)}-{rng.randint(100000, 999999)}"])
    return {"order": order, "product": rng.choice(PRODUCTS), "date": f"{rng.choice(MONTHS)} {rng.randint(1, 28)}",
            "city": rng.choice(CITIES),
            "date2": f"{rng.choice(MONTHS)} {rng.randint(1, 28)}", "carrier": rng.choice(CARRIERS),
            "payment": rng.choice(PAYMENTS), "name": name, "surname": surname, "agent": rng.choice(AGENTS),
            "amount": f"{rng.choice('$$£€')}{rng.randint(12, 480)}.{rng.choice(['00', '99', '49', '95'])}",
            "email": f"{name.lower()}.{surname.lower()}{rng.randint(1, 99)}@mail.example"}


def add_typos(text: str, rng: random.Random) -> str:
    """Swap two adjacent letters, or drop one, in one or two longer words."""
    words = text.split(" ")
    for _ in range(rng.randint(1, 2)):
        i = rng.randrange(len(words))
        w = words[i]
        if len(w) >= 5 and w.isalpha():
            j = rng.randrange(1, len(w) - 2)
            words[i] = w[:j] + w[j + 1] + w[j] + w[j + 2:] if rng.random() < 0.6 else w[:j] + w[j + 1:]
    return " ".join(words)


class Chooser:
    """Picks template variants and remembers them; ``keep`` repeats earlier picks, ``avoid`` forbids them."""

    def __init__(self, rng: random.Random, *, keep: dict[str, int] | None = None,
                 avoid: dict[str, int] | None = None) -> None:
        self.rng, self.keep, self.avoid, self.chosen = rng, keep or {}, avoid or {}, {}

    def __call__(self, key: str, options: list[str]) -> str:
        if self.keep.get(key, len(options)) < len(options):
            index = self.keep[key]
        else:
            index = self.rng.choice([i for i in range(len(options)) if i != self.avoid.get(key)] or [0])
        self.chosen[key] = index
        return options[index]


def compose_instruction(text: str, slots: dict[str, str], pick: Chooser, *, tone: str, channel: str) -> str:
    """Fill an ask template and dress it for the tone and channel (email, chat, phone)."""
    body = text.format_map(slots)
    if tone in TONE_SUFFIX:
        body = f"{body if body[-1] in '.!?' else body + '.'} {pick('suffix', TONE_SUFFIX[tone])}"
    if tone == "terse":
        body = body.lower().rstrip(".!?")
    if pick("typo", ["", "", "", "", "", "", "", "typo"]):
        body = add_typos(body, pick.rng)
    if channel == "email":
        signoff = pick("signoff", EMAIL_SIGNOFFS).format_map(slots)
        return f"{pick('greeting', EMAIL_GREETINGS)}\n\n{body}\n\n{signoff}"
    if channel == "phone":
        return pick("filler", PHONE_FILLERS) + body[:1].lower() + body[1:]
    return body


def compose_response(spec: dict, slots: dict[str, str], pick: Chooser, *, tone: str, channel: str) -> str:
    """Build a multi-sentence answer with numbered steps from the intent's variants."""
    opener = pick("opener", OPENERS["angry" if tone == "angry" else "calm"])
    if channel == "email":
        opener = f"Hi {slots['name']}, {opener[:1].lower()}{opener[1:]}" if opener else f"Hi {slots['name']},"
    head = " ".join(p for p in [opener, pick("ack", spec["ack"]), pick("intro", INTROS)] if p)
    steps = [pick(f"step{i}", [v.strip() for v in s.split(" | ")]) for i, s in enumerate(spec["steps"])]
    numbered = "\n".join(f"{k}. {s}" for k, s in enumerate((s for s in steps if s != "-"), start=1))
    tail = "\n".join(p for p in [pick("closing", CLOSINGS), pick("sig", SIGNATURES)] if p)
    return f"{head}\n\n{numbered}\n\n{tail}".format_map(slots)


def draw_conversation(intent: str, rng: random.Random, *, kind: str = "base") -> Row:
    """A fresh, clean conversation for ``intent`` with random slots, tone and channel."""
    spec, pick = INTENTS[intent], Chooser(rng)
    slots, channel = make_slots(rng), rng.choices(["chat", "email", "phone"], weights=[6, 3, 2])[0]
    tone = rng.choices(["calm", "polite", "angry", "terse"], weights=[11, 4, 3, 2])[0]
    channel = "chat" if tone == "terse" else channel
    ask_index = rng.randrange(len(spec["ask"]))
    sides = spec["ask"][ask_index].split(" || ")
    side = rng.randrange(len(sides))
    instruction = compose_instruction(sides[side], slots, pick, tone=tone, channel=channel)
    response = compose_response(spec, slots, pick, tone=tone, channel=channel)
    return Row(instruction, response, intent, spec["category"], channel, kind, slots=slots, tone=tone,
               ask=(ask_index, side), choices=pick.chosen)


class Gate:
    """Admits a row only if no admitted row of the same intent has its instruction or is a near duplicate."""

    def __init__(self) -> None:
        self.seen: dict[str, list[set[str]]] = {}
        self.asked: set[tuple[str, str]] = set()
        self.recipes: dict[str, list[tuple[int, ...]]] = {}

    def admit(self, row: Row, key: str | None = None) -> bool:
        """Admit ``row`` into the buckets of ``key`` (default its intent) and of its kind."""
        keys, mine = (key or row.intent, row.kind), shingles(conversation(row))
        asked = [(k, normalise(row.instruction)) for k in keys]
        buckets = [self.seen.setdefault(k, []) for k in keys]
        if any(a in self.asked for a in asked) or any(jaccard(mine, o) >= BASE_MAX_JACCARD for b in buckets for o in b):
            return False
        if row.kind == "base" and self._same_recipe(keys[0], row):
            return False
        for bucket in buckets:
            bucket.append(mine)
        self.asked.update(asked)
        return True

    def _same_recipe(self, key: str, row: Row) -> bool:
        """Same ask and the same answer steps read as one conversation to an embedder, whatever the slots."""
        steps = sorted(k for k in row.choices if k.startswith("step"))
        recipe = (row.ask[0], *(row.choices[k] for k in steps))
        known = self.recipes.setdefault(key, [])
        if recipe in known:
            return True
        known.append(recipe)
        return False


def draw_admitted(make: Callable[[], Row], gate: Gate, key: str | None = None, tries: int = 200) -> Row:
    """Draw rows from ``make`` until the gate admits one."""
    for _ in range(tries):
        row = make()
        if gate.admit(row, key):
            return row
    raise RuntimeError(f"could not draw a distinct row for {key or row.intent} in {tries} tries; add templates or lower the counts")


# ----------------------------------------------------------------------------- injected kinds
def intents_by_weight(rng: random.Random, k: int) -> list[str]:
    """``k`` intents drawn in proportion to their clean-row counts."""
    names = list(INTENTS)
    return rng.choices(names, weights=[INTENTS[n]["n"] for n in names], k=k)


def break_response(row: Row, kind: str, rng: random.Random) -> str:
    """Replace a clean answer by one with the defect ``kind``."""
    if kind == "empty":
        return rng.choice(EMPTY_ANSWERS)
    if kind == "short":
        return rng.choice(SHORT_ANSWERS)
    if kind == "refusal":
        return " ".join(p for p in (rng.choice(part) for part in REFUSALS) if p)
    if kind == "echo":
        return row.instruction if rng.random() < 0.7 else row.instruction.lower()
    if kind == "placeholder":
        slots = {**row.slots, **PLACEHOLDER_SLOTS}
        text = compose_response(INTENTS[row.intent], slots, Chooser(rng), tone=row.tone, channel=row.channel)
        return f"{text}\n{rng.choice(PLACEHOLDER_TAILS)}"
    if kind == "truncated":
        words = row.response.split(" ")
        cut = rng.randint(len(words) * 2 // 5, len(words) * 7 // 10)
        while cut < len(words) - 1 and words[cut - 1][-1:] in ".!?:":
            cut += 1
        return " ".join(words[:cut]).rstrip(",;")
    if kind == "repeated_lines":
        lines = row.response.split("\n")
        steps = [line for line in lines if line[:1].isdigit()]
        return "\n".join(lines + steps + steps + steps[:1])
    raise ValueError(f"unknown defect kind {kind!r}")


def foreign_row(rng: random.Random, k: int) -> Row:
    """A support exchange in Spanish or German: entry ``k`` of ``FOREIGN``, cycling."""
    intent, asks, (openers, steps, closings) = FOREIGN[k % len(FOREIGN)]
    slots = make_slots(rng)
    body = "\n".join(f"{i}. {rng.choice(s.split(' | ')).strip()}" for i, s in enumerate(steps, start=1))
    response = f"{rng.choice(openers)}\n\n{body}\n\n{rng.choice(closings)}".format_map(slots)
    return Row(rng.choice(asks).format_map(slots), response, intent, INTENTS[intent]["category"],
               rng.choice(["chat", "email"]), "foreign", slots=slots)


def quality_rows(gate: Gate, rng: random.Random) -> list[Row]:
    """The rows with one quality defect each, as many of each kind as ``QUALITY_COUNTS`` says."""
    rows = []
    for kind, count in QUALITY_COUNTS.items():
        for k, intent in enumerate(intents_by_weight(rng, count)):
            if kind == "foreign":
                rows.append(draw_admitted(lambda k=k: foreign_row(rng, k), gate, key=f"foreign{k % len(FOREIGN)}"))
                continue

            def make(intent: str = intent, kind: str = kind) -> Row:
                row = draw_conversation(intent, rng, kind=kind)
                row.response = break_response(row, kind, rng)
                return row
            rows.append(draw_admitted(make, gate))
    return rows


def canned_rows(rng: random.Random) -> list[Row]:
    """Different questions answered with the same macro, one group per ``CANNED`` entry."""
    rows = []
    for group, (answer, questions) in enumerate(CANNED):
        for question, intent in questions:
            slots = make_slots(rng)
            rows.append(Row(question.format_map(slots), answer, intent, INTENTS[intent]["category"],
                            rng.choice(["chat", "email"]), "canned_answer", slots=slots, note=f"group{group}"))
    return rows


def exact_duplicate(src: Row, rng: random.Random) -> Row:
    """An identical copy, or one that differs only in letter case or whitespace."""
    dup = Row(src.instruction, src.response, src.intent, src.category, src.channel, "exact_dup", src, note="identical")
    variant = rng.choice(["identical", "identical", "lower", "spaces", "trailing"])
    if variant == "lower":
        dup.instruction = src.instruction.lower()
    elif variant == "spaces":
        dup.instruction = src.instruction.replace(" ", "  ", rng.randint(1, 3))
    elif variant == "trailing":
        dup.instruction, dup.response = f"  {src.instruction}", f"{src.response}\n\n"
    if (dup.instruction, dup.response) != (src.instruction, src.response):
        dup.note = "case_whitespace"
    if " ".join(conversation(dup).lower().split()) != " ".join(conversation(src).lower().split()):
        raise RuntimeError(f"exact duplicate variant {variant!r} changed more than case or whitespace")
    return dup


def near_duplicate(src: Row, rng: random.Random) -> Row:
    """A copy with a greeting or sign-off added, a word or two swapped, punctuation changed."""
    for _ in range(50):
        instruction, response = src.instruction, src.response
        if rng.random() < 0.5:
            instruction = f"{rng.choice(NEAR_GREETINGS)} {instruction}"
        if rng.random() < 0.5:
            instruction = f"{instruction} {rng.choice(NEAR_SIGNOFFS)}"
        words = [w for w in SYNONYMS if re.search(rf"\b{w}\b", response)]
        for word in rng.sample(words, min(len(words), rng.randint(1, 2))):
            response = re.sub(rf"\b{word}\b", SYNONYMS[word], response, count=1)
        if rng.random() < 0.5:
            response = response.replace(", ", " ").replace("!", ".")
        row = Row(instruction, response, src.intent, src.category, src.channel, "near_dup", src)
        a, b = shingles(conversation(row)), shingles(conversation(src))
        if normalise(conversation(row)) != normalise(conversation(src)) and jaccard(a, b) >= NEAR_MIN_JACCARD:
            return row
    raise RuntimeError("could not make a near duplicate")


def paraphrase(src: Row, gate: Gate, rng: random.Random) -> Row | None:
    """Same request in other words: the paired ask template, answer re-worded with the same slots."""
    spec = INTENTS[src.intent]
    sides = spec["ask"][src.ask[0]].split(" || ")
    if len(sides) < 2:
        return None
    steps = [k for k in src.choices if k.startswith("step")]
    for _ in range(30):  # same dressing (greeting, tone, opener, closing), other words for half the substance
        reworded = rng.sample(steps, len(steps) // 2)
        keep = {k: v for k, v in src.choices.items() if k not in reworded} | {"typo": 0}
        pick = Chooser(rng, keep=keep, avoid={k: src.choices[k] for k in reworded})
        instruction = compose_instruction(sides[1 - src.ask[1]], src.slots, pick, tone=src.tone, channel=src.channel)
        response = compose_response(spec, src.slots, pick, tone=src.tone, channel=src.channel)
        row = Row(instruction, response, src.intent, src.category, src.channel, "paraphrase", src)
        if gate.admit(row):
            return row
    return None


# ----------------------------------------------------------------------------- benchmark items
def _mmlu(root: Path, subject: str, index: int) -> dict[str, str]:
    return pl.read_csv(root / "mmlu" / "test" / f"{subject}_test.csv", infer_schema=False).row(index, named=True)


def _with_choices(item: dict[str, str]) -> str:
    return item["question"].strip() + "".join(f"\n{'ABCD'[i]}. {item[f'choice{i}']}" for i in range(4))


def _mmlu_answer(item: dict[str, str]) -> str:
    k = int(item["answer"])
    return f"The correct answer is {'ABCD'[k]}. {item[f'choice{k}']} Not really a store question, but happy to help!"


def benchmark_rows(root: Path) -> list[Row]:
    """The eight public benchmark items listed in the module docstring, as support rows."""
    gsm = [json.loads(line) for line in (root / "gsm8k" / "test.jsonl").read_text().splitlines()[:3]]
    tqa = pl.read_csv(root / "truthfulqa" / "TruthfulQA.csv", infer_schema=False)
    geo = _mmlu(root, "high_school_geography", 2)
    sec = _mmlu(root, "computer_security", 14)
    mkt = _mmlu(root, "marketing", 10)

    def gsm_answer(item: dict[str, str]) -> str:
        work, final = item["answer"].split("####")
        return re.sub(r"<<[^>]*>>", "", work).strip() + f"\nSo the answer is {final.strip()}."

    items = [
        ("gsm8k/test.jsonl:0 verbatim", gsm[0]["question"], gsm_answer(gsm[0])),
        ("gsm8k/test.jsonl:1 lowercased", re.sub(r"[.,?]", "", gsm[1]["question"].lower()) + "??", gsm_answer(gsm[1])),
        ("gsm8k/test.jsonl:2 embedded", "Not about an order, sorry, but my son is stuck on this homework question: "
         f"{gsm[2]['question']} Thanks!", gsm_answer(gsm[2])),
        ("mmlu/high_school_geography:2 with choices", _with_choices(geo), _mmlu_answer(geo)),
        ("mmlu/computer_security:14 lowercased", _with_choices(sec).lower(), _mmlu_answer(sec)),
        ("mmlu/marketing:10 question only", mkt["question"].strip(),
         "Market segmentation groups customers with similar needs, which makes serving them commercially viable."),
        ("truthfulqa:0 verbatim", tqa["Question"][0], tqa["Best Answer"][0] + "."),
        ("truthfulqa:8 lowercased", re.sub(r"[^\w\s]", "", tqa["Question"][8].lower()), tqa["Best Answer"][8]),
    ]
    return [Row(q, a, "other", "OTHER", "chat", "benchmark", note=note) for note, q, a in items]


# ----------------------------------------------------------------------------- assembly
def generate(seed: int, benchmarks: Path) -> list[Row]:
    """All rows in file order: clean rows, defects and benchmark items shuffled, copies after their source."""
    rng, gate = random.Random(seed), Gate()
    base = [draw_admitted(lambda i=i: draw_conversation(i, rng), gate) for i in INTENTS for _ in range(INTENTS[i]["n"])]
    primary = base + quality_rows(gate, rng) + canned_rows(rng) + benchmark_rows(benchmarks)
    sources = rng.sample(base, sum(DUP_COUNTS.values()) * 2)
    derived = [exact_duplicate(s, rng) for s in sources[:DUP_COUNTS["exact_dup"]]]
    derived += [near_duplicate(s, rng) for s in sources[DUP_COUNTS["exact_dup"]:DUP_COUNTS["exact_dup"] + DUP_COUNTS["near_dup"]]]
    paraphrases = (paraphrase(s, gate, rng) for s in sources[DUP_COUNTS["exact_dup"] + DUP_COUNTS["near_dup"]:])
    derived += [p for p in paraphrases if p is not None][:DUP_COUNTS["paraphrase"]]
    rng.shuffle(primary)
    for row in derived:  # each copy lands somewhere after its source, so "keep first" keeps the source
        position = next(i for i, r in enumerate(primary) if r is row.source)
        primary.insert(rng.randint(position + 1, len(primary)), row)
    return primary


def manifest(rows: list[Row], *, seed: int, data: bytes) -> dict:
    """Counts per injected kind, their line numbers (1-based) and each copy's source line."""
    line = {id(r): n for n, r in enumerate(rows, start=1)}
    kinds = ["base", "exact_dup", "near_dup", "paraphrase", "canned_answer", *QUALITY_COUNTS, "benchmark"]
    near = [jaccard(shingles(conversation(r)), shingles(conversation(r.source))) for r in rows if r.kind == "near_dup"]
    para = [jaccard(shingles(conversation(r)), shingles(conversation(r.source))) for r in rows if r.kind == "paraphrase"]
    return {
        "file": "support_sample.jsonl", "generator": "scripts/make_support_sample.py", "seed": seed,
        "sha256": hashlib.sha256(data).hexdigest(), "rows": len(rows),
        "counts": {k: sum(r.kind == k for r in rows) for k in kinds},
        "detail": {
            "exact_dup_identical": sum(r.kind == "exact_dup" and r.note == "identical" for r in rows),
            "exact_dup_case_whitespace": sum(r.kind == "exact_dup" and r.note == "case_whitespace" for r in rows),
            "canned_answer_groups": len(CANNED),
            "similarity": "Jaccard of word 5-gram sets of instruction + response, lowercased, non-alphanumerics removed",
            "independent_rows_max_jaccard_below": BASE_MAX_JACCARD,
            "near_dup_jaccard_min": round(min(near), 3), "paraphrase_jaccard_max": round(max(para), 3),
        },
        "categories": dict(sorted(Counter(r.category for r in rows).items())),
        "intents": dict(sorted(Counter(r.intent for r in rows).items())),
        "benchmark_items": [{"item": r.note, "line": line[id(r)]} for r in rows if r.kind == "benchmark"],
        "lines": {k: [line[id(r)] for r in rows if r.kind == k] for k in kinds if k != "base"},
        "canned_answer_lines": [[line[id(r)] for r in rows if r.note == f"group{g}"] for g in range(len(CANNED))],
        "duplicate_of": {str(line[id(r)]): line[id(r.source)] for r in rows if r.source is not None},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=ROOT / "pipelines" / "data" / "support_sample.jsonl")
    parser.add_argument("--benchmarks", type=Path, default=ROOT.parent / "shared" / "data",
                        help="folder with gsm8k/, mmlu/ and truthfulqa/ (the ../shared/data layout)")
    args = parser.parse_args()
    rows = generate(args.seed, args.benchmarks)
    data = "".join(json.dumps(r.record(), ensure_ascii=False) + "\n" for r in rows).encode()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(data)
    info = manifest(rows, seed=args.seed, data=data)
    args.out.with_suffix(".manifest.json").write_text(json.dumps(info, indent=1) + "\n")
    print(f"wrote {len(rows)} rows ({len(data) / 1e6:.2f} MB) to {args.out}")
    print(json.dumps(info["counts"]))


if __name__ == "__main__":
    main()
